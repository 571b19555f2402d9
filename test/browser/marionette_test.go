package browser

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// marionette is a client of Firefox's built-in remote protocol: every
// message is its JSON length in decimal, a colon and the JSON. A command
// is [0, id, name, params]; its answer is [1, id, error, result]. The
// commands are WebDriver's, named "WebDriver:<Command>".
type marionette struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// elementKey names an element reference in WebDriver's JSON.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// dialMarionette connects and reads the server's greeting.
func dialMarionette(addr string) (*marionette, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	m := &marionette{conn: conn, r: bufio.NewReader(conn)}
	var hello struct {
		Protocol int `json:"marionetteProtocol"`
	}
	b, err := m.read()
	if err == nil {
		err = json.Unmarshal(b, &hello)
	}
	if err == nil && hello.Protocol < 3 {
		err = fmt.Errorf("marionette protocol %d, want 3", hello.Protocol)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette greeting: %w", err)
	}
	return m, nil
}

func (m *marionette) read() ([]byte, error) {
	n, err := m.r.ReadString(':')
	if err != nil {
		return nil, err
	}
	size, err := strconv.Atoi(n[:len(n)-1])
	if err != nil || size < 0 || size > 256<<20 {
		return nil, fmt.Errorf("bad message length %q", n)
	}
	b := make([]byte, size)
	_, err = io.ReadFull(m.r, b)
	return b, err
}

// call sends a command and decodes its result into out (if not nil). A
// command that does not answer within a minute and a half fails.
func (m *marionette) call(name string, params, out any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if params == nil {
		params = map[string]any{}
	}
	m.id++
	b, err := json.Marshal([]any{0, m.id, name, params})
	if err != nil {
		return err
	}
	if err := m.conn.SetDeadline(time.Now().Add(90 * time.Second)); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(m.conn, "%d:%s", len(b), b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for {
		b, err := m.read()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var msg []json.RawMessage
		if err := json.Unmarshal(b, &msg); err != nil || len(msg) != 4 {
			return fmt.Errorf("%s: unexpected message %.200s", name, b)
		}
		var id int
		if err := json.Unmarshal(msg[1], &id); err != nil || id != m.id {
			continue // the answer to a command that timed out before
		}
		if string(msg[2]) != "null" {
			var e struct{ Error, Message string }
			_ = json.Unmarshal(msg[2], &e)
			return fmt.Errorf("%s: %s: %s", name, e.Error, e.Message)
		}
		if out == nil {
			return nil
		}
		return json.Unmarshal(msg[3], out)
	}
}

// value calls a command whose result is {"value": ...}.
func (m *marionette) value(name string, params, out any) error {
	var res struct{ Value json.RawMessage }
	if err := m.call(name, params, &res); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res.Value, out)
}

// element finds the first element matching a CSS selector.
func (m *marionette) element(css string) (string, error) {
	var el map[string]string
	if err := m.value("WebDriver:FindElement", map[string]string{"using": "css selector", "value": css}, &el); err != nil {
		return "", err
	}
	if el[elementKey] == "" {
		return "", errors.New("no element reference for " + css)
	}
	return el[elementKey], nil
}

func (m *marionette) navigate(url string) error {
	return m.call("WebDriver:Navigate", map[string]string{"url": url}, nil)
}

// eval runs js as the body of WebDriver's Execute Script, which awaits a
// promise the script returns.
func (m *marionette) eval(js string, out any) error {
	return m.value("WebDriver:ExecuteScript", map[string]any{"script": "return (" + js + ");", "args": []any{}}, out)
}

func (m *marionette) screenshot() ([]byte, error) {
	var s string
	if err := m.value("WebDriver:TakeScreenshot", map[string]any{"full": true}, &s); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

func (m *marionette) click(css string) error {
	id, err := m.element(css)
	if err != nil {
		return err
	}
	return m.call("WebDriver:ElementClick", map[string]string{"id": id}, nil)
}

// typeInto sends text to an element as key presses; WebDriver's Enter is
// U+E007.
func (m *marionette) typeInto(css, text string) error {
	id, err := m.element(css)
	if err != nil {
		return err
	}
	keys := []rune{}
	for _, r := range text {
		if r == '\r' {
			r = '\uE007'
		}
		keys = append(keys, r)
	}
	return m.call("WebDriver:ElementSendKeys", map[string]string{"id": id, "text": string(keys)}, nil)
}

// pressEscape presses Esc (U+E00C) as a key action, in the focused element.
func (m *marionette) pressEscape() error {
	actions := []any{map[string]any{"type": "key", "id": "keyboard", "actions": []any{
		map[string]string{"type": "keyDown", "value": "\uE00C"},
		map[string]string{"type": "keyUp", "value": "\uE00C"},
	}}}
	if err := m.call("WebDriver:PerformActions", map[string]any{"actions": actions}, nil); err != nil {
		return err
	}
	return m.call("WebDriver:ReleaseActions", nil, nil)
}
