package kit

import (
	"encoding/json"

	v1 "k8s.io/api/core/v1"
)

// TemplatePatch is the data of a StatefulSet's or DaemonSet's
// ControllerRevision: a strategic merge patch that puts the pod template
// back, {"spec":{"template":{...,"$patch":"replace"}}}, with every object's
// keys sorted (the round trip through a generic map sorts them). The bytes
// must be exactly what Kubernetes writes: the controllers and kubectl find a
// set's revision by comparing them, and `kubectl rollout undo` applies them.
// unmarshal is the decoder upstream uses for the kind: encoding/json's for
// StatefulSets, apimachinery's, which keeps integers exact, for DaemonSets
// (the two differ only for integers beyond 2^53).
func TemplatePatch(template *v1.PodTemplateSpec, unmarshal func([]byte, any) error) ([]byte, error) {
	raw, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var fields map[string]any
	if err := unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	fields["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": fields}})
}
