package node

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidateNodeName checks a node name the way the apiserver does (a DNS
// subdomain), so that a bad --node-label fails before anything starts.
func ValidateNodeName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("invalid node name %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// ParseNodeLabel parses "NODE:KEY=VALUE" (e.g. "node-2:hardware=gpu"); the
// value may be empty ("node-2:hardware=").
func ParseNodeLabel(s string) (node string, key string, value string, err error) {
	node, rest, ok := strings.Cut(s, ":")
	if !ok || node == "" {
		return "", "", "", fmt.Errorf("node label %q: want NODE:KEY=VALUE", s)
	}
	if err := ValidateNodeName(node); err != nil {
		return "", "", "", fmt.Errorf("node label %q: %w", s, err)
	}
	key, value, err = ParseLabel(rest)
	if err != nil {
		return "", "", "", fmt.Errorf("node label %q: %w", s, err)
	}
	return node, key, value, nil
}

// ParseLabel parses "KEY=VALUE", for `quartet node add --label`.
func ParseLabel(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("label %q: want KEY=VALUE", s)
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return "", "", fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
		return "", "", fmt.Errorf("label value %q: %s", value, strings.Join(errs, "; "))
	}
	return key, value, nil
}

// ParseNodeTaint parses "NODE:KEY[=VALUE]:EFFECT", e.g.
// "node-1:node-role.kubernetes.io/control-plane=:NoSchedule".
func ParseNodeTaint(s string) (node string, t v1.Taint, err error) {
	node, rest, ok := strings.Cut(s, ":")
	if !ok || node == "" {
		return "", v1.Taint{}, fmt.Errorf("node taint %q: want NODE:KEY=VALUE:EFFECT", s)
	}
	if err := ValidateNodeName(node); err != nil {
		return "", v1.Taint{}, fmt.Errorf("node taint %q: %w", s, err)
	}
	t, err = ParseTaint(rest)
	if err != nil {
		return "", v1.Taint{}, fmt.Errorf("node taint %q: %w", s, err)
	}
	return node, t, nil
}

// ParseTaint parses "KEY=VALUE:EFFECT", "KEY=:EFFECT" and "KEY:EFFECT", as
// `kubectl taint` does.
func ParseTaint(s string) (v1.Taint, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return v1.Taint{}, fmt.Errorf("taint %q: want KEY=VALUE:EFFECT or KEY:EFFECT", s)
	}
	kv, effect := s[:i], v1.TaintEffect(s[i+1:])
	switch effect {
	case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
	default:
		return v1.Taint{}, fmt.Errorf("taint %q: effect %q is not one of NoSchedule, PreferNoSchedule, NoExecute", s, effect)
	}
	key, value, _ := strings.Cut(kv, "=")
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return v1.Taint{}, fmt.Errorf("taint %q: key %q: %s", s, key, strings.Join(errs, "; "))
	}
	if value != "" {
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return v1.Taint{}, fmt.Errorf("taint %q: value %q: %s", s, value, strings.Join(errs, "; "))
		}
	}
	return v1.Taint{Key: key, Value: value, Effect: effect}, nil
}
