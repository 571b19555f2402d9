// Package manifest reads Kubernetes objects the way people hand them to
// quartet's offline commands: YAML or JSON files, directories of them,
// several documents per file, List kinds, and standard input (Helm or
// Kustomize output piped in). It decodes strictly, as the API server does
// with fieldValidation=Strict, so a misspelt field is reported with its path.
// `quartet explain` and `quartet cron next|simulate` read manifests through
// it, and find a cluster through ClientConfig.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Stdin is the path that means standard input.
const Stdin = "-"

// Object is one object read from a manifest, not yet decoded into a type.
type Object struct {
	// Source is the file it came from, or "<stdin>".
	Source string
	// Doc is the YAML document's number in Source, from 1.
	Doc int
	// Item is the object's index in a List document, or -1.
	Item int

	APIVersion, Kind, Namespace, Name string
	// JSON is the object as JSON.
	JSON []byte
}

// Where names the object's place for messages: "web.yaml", "web.yaml#2"
// (the second document), "list.yaml#1 items[3]".
func (o Object) Where() string {
	w := o.Source
	if o.Doc > 1 || o.Item >= 0 {
		w += fmt.Sprintf("#%d", o.Doc)
	}
	if o.Item >= 0 {
		w += fmt.Sprintf(" items[%d]", o.Item)
	}
	return w
}

// Decode decodes the object into v strictly: unknown or duplicate fields and
// wrong types are errors naming the field.
func (o Object) Decode(v any) error {
	strict, err := kjson.UnmarshalStrict(o.JSON, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// Error is a document that could not be read.
type Error struct {
	// Where is the file (and document) at fault.
	Where string
	Err   error
}

func (e *Error) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Read reads every object of one stream. Documents that cannot be read are
// returned as *Error values alongside the objects that could.
func Read(r io.Reader, source string) ([]Object, []error) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var (
		objs []Object
		errs []error
	)
	for n := 1; ; n++ {
		data, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			where := source
			if n > 1 {
				where = fmt.Sprintf("%s#%d", source, n)
			}
			errs = append(errs, &Error{Where: where, Err: err})
			break // the stream cannot be followed past a read error
		}
		found, e := decodeDocument(data, source, n)
		objs, errs = append(objs, found...), append(errs, e...)
	}
	return objs, errs
}

// Load reads every path: a file, "-" for stdin, or a directory, whose
// .yaml, .yml and .json files are read recursively in lexical order (hidden
// files and directories are skipped). Objects come back in the order read;
// what could not be read comes back as errors, each naming its file.
func Load(paths []string, stdin io.Reader) ([]Object, []error) {
	var (
		objs []Object
		errs []error
	)
	read := func(r io.Reader, source string) {
		o, e := Read(r, source)
		objs, errs = append(objs, o...), append(errs, e...)
	}
	for _, path := range paths {
		if path == Stdin {
			read(stdin, "<stdin>")
			continue
		}
		files, err := files(path)
		if err != nil {
			errs = append(errs, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			read(bytes.NewReader(data), f)
		}
	}
	return objs, errs
}

// files lists the manifests a path names.
func files(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		hidden := p != path && strings.HasPrefix(d.Name(), ".")
		switch {
		case d.IsDir() && hidden:
			return filepath.SkipDir
		case d.IsDir() || hidden:
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// head is what every object has.
type head struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// decodeDocument reads one YAML document: nothing (empty or only comments),
// an object, or a List of objects.
func decodeDocument(data []byte, source string, doc int) ([]Object, []error) {
	where := source
	if doc > 1 {
		where = fmt.Sprintf("%s#%d", source, doc)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, []error{&Error{Where: where, Err: fmt.Errorf("not YAML or JSON: %w", err)}}
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return nil, nil // empty, or only comments
	}
	if js[0] != '{' {
		return nil, []error{&Error{Where: where, Err: errors.New("not an object (a Kubernetes manifest is a mapping with apiVersion and kind)")}}
	}
	var h head
	if err := json.Unmarshal(js, &h); err != nil {
		return nil, []error{&Error{Where: where, Err: fmt.Errorf("reading apiVersion, kind and metadata: %w", err)}}
	}
	if h.Kind == "" && h.APIVersion == "" && h.Items == nil {
		var fields map[string]json.RawMessage
		if json.Unmarshal(js, &fields) == nil && len(fields) == 0 {
			return nil, nil // {}
		}
	}
	if strings.HasSuffix(h.Kind, "List") && h.Items != nil {
		var (
			objs []Object
			errs []error
		)
		for i, item := range h.Items {
			o, err := object(item, source, doc, i)
			if err != nil {
				errs = append(errs, &Error{Where: fmt.Sprintf("%s#%d items[%d]", source, doc, i), Err: err})
				continue
			}
			objs = append(objs, o)
		}
		return objs, errs
	}
	o, err := object(js, source, doc, -1)
	if err != nil {
		return nil, []error{&Error{Where: where, Err: err}}
	}
	return []Object{o}, nil
}

func object(js []byte, source string, doc, item int) (Object, error) {
	var h head
	if err := json.Unmarshal(js, &h); err != nil {
		return Object{}, fmt.Errorf("reading apiVersion, kind and metadata: %w", err)
	}
	switch {
	case h.Kind == "":
		return Object{}, errors.New("an object without a kind")
	case h.APIVersion == "":
		return Object{}, fmt.Errorf("a %s without an apiVersion", h.Kind)
	}
	return Object{
		Source: source, Doc: doc, Item: item,
		APIVersion: h.APIVersion, Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name,
		JSON: js,
	}, nil
}
