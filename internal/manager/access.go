package manager

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// rule is a PolicyRule written short.
func rule(group string, resources []string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: resources, Verbs: verbs}
}

func res(r ...string) []string { return r }

// eventsRule lets a controller record events, as upstream's controller
// roles do.
var eventsRule = rbacv1.PolicyRule{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "update", "patch"}}

// controllerRules are the permissions of each controller: those upstream's
// bootstrap policy gives its controller of the same kind
// (system:controller:<service account>), which also cover what the
// controller's informers list and watch, without the long-gone extensions
// API group.
var controllerRules = map[string][]rbacv1.PolicyRule{
	"statefulset": {
		rule("", res("pods"), "list", "watch"),
		rule("apps", res("statefulsets"), "get", "list", "watch"),
		rule("apps", res("statefulsets/status"), "update"),
		rule("apps", res("statefulsets/finalizers"), "update"),
		rule("", res("pods"), "get", "create", "delete", "update", "patch"),
		rule("apps", res("controllerrevisions"), "get", "create", "delete", "update", "patch", "list", "watch"),
		rule("", res("persistentvolumeclaims"), "get", "create", "list", "watch"),
		rule("", res("persistentvolumeclaims"), "update", "delete"),
		rule("", res("pods/finalizers"), "update"),
		eventsRule,
	},
	"daemonset": {
		rule("apps", res("daemonsets"), "get", "list", "watch"),
		rule("apps", res("daemonsets/status"), "update"),
		rule("apps", res("daemonsets/finalizers"), "update"),
		rule("", res("nodes"), "list", "watch"),
		rule("", res("pods"), "list", "watch", "create", "delete", "patch"),
		rule("", res("pods/binding"), "create"),
		rule("apps", res("controllerrevisions"), "get", "list", "watch", "create", "delete", "update", "patch"),
		eventsRule,
	},
	"job": {
		rule("batch", res("jobs"), "get", "list", "watch", "update", "patch"),
		rule("batch", res("jobs/status"), "update"),
		rule("batch", res("jobs/finalizers"), "update"),
		rule("", res("pods"), "list", "watch", "create", "delete", "patch"),
		eventsRule,
	},
	"cronjob": {
		rule("batch", res("cronjobs"), "get", "list", "watch", "update"),
		rule("batch", res("jobs"), "get", "list", "watch", "create", "update", "delete", "patch"),
		rule("batch", res("cronjobs/status"), "update"),
		rule("batch", res("cronjobs/finalizers"), "update"),
		rule("", res("pods"), "list", "watch", "delete"),
		eventsRule,
	},
	"ttlafterfinished": {
		rule("batch", res("jobs"), "get", "list", "watch", "delete"),
		eventsRule,
	},
}

// ControllerRules returns the cluster-wide permissions the named
// controller needs.
func ControllerRules(name string) []rbacv1.PolicyRule {
	return slices.Clone(controllerRules[name])
}

// ElectionRules are the permissions leader election needs on Leases in its
// namespace.
func ElectionRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{rule("coordination.k8s.io", res("leases"), "get", "create", "update")}
}

// ProbeRules are the permissions the start-up probe for upstream's
// controllers needs in its namespace (see ProbeUpstream).
func ProbeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule("apps", res("statefulsets", "daemonsets"), "get", "create", "delete"),
		rule("batch", res("cronjobs", "jobs"), "get", "create", "delete"),
		rule("batch", res("cronjobs/status"), "update"),
	}
}

// MetricsAuthRules are the permissions the metrics endpoint needs to ask the
// apiserver who a caller is and whether it may read /metrics (those of the
// system:auth-delegator ClusterRole).
func MetricsAuthRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule("authentication.k8s.io", res("tokenreviews"), "create"),
		rule("authorization.k8s.io", res("subjectaccessreviews"), "create"),
	}
}

// Access is one permission: a verb on a resource (and subresource), in a
// namespace or cluster-wide ("").
type Access struct {
	Verb, Group, Resource, Subresource, Namespace string
}

func (a Access) String() string {
	r := a.Resource
	if a.Subresource != "" {
		r += "/" + a.Subresource
	}
	if a.Group != "" {
		r += "." + a.Group
	}
	where := "in every namespace"
	if a.Namespace != "" {
		where = "in namespace " + a.Namespace
	}
	return fmt.Sprintf("%s %s %s", a.Verb, r, where)
}

// Accesses expands rules into the permissions they grant, in namespace
// ("" for cluster-wide), without repeats.
func Accesses(rules []rbacv1.PolicyRule, namespace string) []Access {
	var out []Access
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, v := range r.Verbs {
					a := Access{Verb: v, Group: g, Resource: resource, Subresource: sub, Namespace: namespace}
					if !slices.Contains(out, a) {
						out = append(out, a)
					}
				}
			}
		}
	}
	return out
}

// Missing asks the apiserver, with a SelfSubjectAccessReview each, which of
// the permissions the client's identity lacks.
func Missing(ctx context.Context, client kubernetes.Interface, want []Access) ([]Access, error) {
	type answer struct {
		allowed bool
		err     error
	}
	answers := make([]answer, len(want))
	var wg sync.WaitGroup
	limit := make(chan struct{}, 8)
	for i, a := range want {
		wg.Go(func() {
			limit <- struct{}{}
			defer func() { <-limit }()
			review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: a.Namespace, Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				answers[i] = answer{err: fmt.Errorf("checking %s: %w", a, err)}
				return
			}
			answers[i] = answer{allowed: review.Status.Allowed}
		})
	}
	wg.Wait()
	var missing []Access
	for i, a := range answers {
		if a.err != nil {
			return nil, a.err
		}
		if !a.allowed {
			missing = append(missing, want[i])
		}
	}
	return missing, nil
}
