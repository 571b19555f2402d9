package up

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"quartet.dev/quartet/internal/component"
	"quartet.dev/quartet/internal/control"
	"quartet.dev/quartet/internal/controlplane"
	"quartet.dev/quartet/internal/node"
	"quartet.dev/quartet/internal/pki"
)

// nodes runs the node agents and registers the nodes: the ones asked for
// and the ones added with `quartet node add` on an earlier run. It is ready
// when every node is Ready.
func (u *cluster) nodes() component.Component {
	return component.Component{Name: "nodes", StopTimeout: 8 * time.Second, Start: func(ctx context.Context, _ component.Progress) (string, func() error, error) {
		cp := u.cp
		client, _, err := cp.ClientFor(controlplane.UserNodeAgents)
		if err != nil {
			return "", nil, err
		}
		nodeClients := cp.NodeClients()
		hostCfg := node.HostConfig{
			Client:      client,
			NodeClient:  nodeClients.Client,
			AdminClient: cp.Admin(),
			DataDir:     u.cfg.Dir.Path(),
			Runtime:     u.cfg.Runtime,
			DNSAddress:  u.dnsAddr,
			ServingCert: func(name string) (*tls.Certificate, error) {
				c, err := cp.CA.Issue(pki.Leaf{CommonName: "system:node:" + name, Organization: []string{"system:nodes"},
					Server: true, DNSNames: []string{name}, IPs: u.net.nodeIPs()})
				if err != nil {
					return nil, err
				}
				return c.TLS(), nil
			},
			ClientCAs:   cp.CA.Pool(),
			ClientNames: []string{controlplane.UserKubeletClient},
		}
		u.net.nodeConfig(&hostCfg)
		host, err := node.NewHost(hostCfg)
		if err != nil {
			return "", nil, err
		}
		hostDone := make(chan error, 1)
		u.net.nodes.Add(1) // the pod network stops after the node host
		go func() {
			defer u.net.nodes.Done()
			hostDone <- host.Run(ctx)
		}()

		saved := &savedNodes{path: u.cfg.Dir.AddedNodes()}
		added, err := saved.load()
		if err != nil {
			return "", nil, err
		}
		all := append(append([]node.NodeSpec(nil), u.cfg.Nodes...), added...)
		if err := addNodes(ctx, host, all); err != nil {
			return "", nil, err
		}
		u.control.set(host, saved, nodeClients)
		rt := u.cfg.Runtime
		if rt == node.RuntimeAuto {
			rt += " (" + strings.Join(host.Order(), " → ") + ")"
		}
		detail := fmt.Sprintf("%d (%s), runtime %s", len(all), strings.Join(host.Nodes(), ", "), rt)
		switch {
		case len(all) == 0:
			detail = "none yet (quartet node add NAME adds one)"
		case len(all) > 6:
			detail = fmt.Sprintf("%d, runtime %s", len(all), rt)
		}
		if ok, why := host.Isolation(); !ok && u.cfg.Runtime != node.RuntimeSim {
			detail += "; no per-pod mount and UTS namespaces: " + why
		}
		return detail, func() error { return <-hostDone }, nil
	}}
}

// addNodes registers nodes in parallel (bounded), so a thousand sim nodes
// start in seconds.
func addNodes(ctx context.Context, host *node.Host, specs []node.NodeSpec) error {
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := host.AddNode(ctx, s); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("node %s: %w", s.Name, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// nodeControl adapts the node host to the control socket and remembers the
// nodes added at run time, so a restart brings them back.
type nodeControl struct {
	mu      sync.Mutex
	host    *node.Host
	saved   *savedNodes
	clients *controlplane.NodeClients
}

// set points the control socket at a (re)started node host.
func (n *nodeControl) set(host *node.Host, saved *savedNodes, clients *controlplane.NodeClients) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.host, n.saved, n.clients = host, saved, clients
}

func (n *nodeControl) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.host.Nodes()
}

func (n *nodeControl) AddNode(ctx context.Context, spec control.NodeSpec) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := node.ValidateNodeName(spec.Name); err != nil {
		return control.InvalidError{Err: err}
	}
	if slices.Contains(n.host.Nodes(), spec.Name) {
		return fmt.Errorf("node %s: %w", spec.Name, control.ErrExists)
	}
	s := node.NodeSpec{Name: spec.Name, Labels: spec.Labels, Taints: spec.Taints}
	if err := n.host.AddNode(ctx, s); err != nil {
		return err
	}
	return n.saved.update(func(m map[string]node.NodeSpec) { m[s.Name] = s })
}

func (n *nodeControl) RemoveNode(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.host.Nodes(), name) {
		return fmt.Errorf("node %s: %w", name, control.ErrNotFound)
	}
	err := n.host.RemoveNode(ctx, name)
	// The agent has stopped, whatever became of its Node: its credential
	// goes with it.
	n.clients.Revoke(name)
	if err != nil {
		return err
	}
	return n.saved.update(func(m map[string]node.NodeSpec) { delete(m, name) })
}

// savedNodes is the list of nodes added with `quartet node add`.
type savedNodes struct{ path string }

func (s *savedNodes) load() ([]node.NodeSpec, error) {
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]node.NodeSpec, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *savedNodes) read() (map[string]node.NodeSpec, error) {
	m := map[string]node.NodeSpec{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return m, nil
}

func (s *savedNodes) update(f func(map[string]node.NodeSpec)) error {
	m, err := s.read()
	if err != nil {
		return err
	}
	f(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	return pki.WriteFileAtomic(s.path, b, 0o600)
}
