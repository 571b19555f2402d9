package controlplane

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"quartet.dev/quartet/internal/pki"
)

// Each in-process component talks to the apiserver with a client certificate
// of its own, so RBAC, audit and per-identity request counts see who did what.
// quartet's workload controllers take the names of upstream's controller
// service accounts, so they get exactly the permissions upstream's bootstrap
// policy grants those controllers, and no more.
const (
	userAdmin             = "quartet-admin"
	userControllerManager = "system:kube-controller-manager"
	userScheduler         = "system:kube-scheduler"
	userKubeletClient     = "kube-apiserver-kubelet-client"
	// userNodeAgents lists and watches pods and nodes for every node agent
	// (read-only); each node acts as nodeUser(name) besides.
	userNodeAgents  = "quartet:node-agents"
	userProvisioner = "quartet:local-path-provisioner"
	userDNS         = "quartet:dns"
	// userWorkloadInformers lists and watches for the workload controllers,
	// quartet's or upstream's, so their API requests are counted apart
	// from the rest of the controller manager's.
	userWorkloadInformers = "quartet:workload-controllers"
)

// controllerUser is the identity of one of quartet's workload controllers.
func controllerUser(serviceAccount string) string {
	return "system:serviceaccount:kube-system:" + serviceAccount
}

// nodeUser is a node's own identity, in group nodeGroup: the apiserver's
// Node authorizer and NodeRestriction admission limit it to its own Node,
// Lease and pods and what those pods refer to, as on kubeadm clusters.
func nodeUser(name string) string { return "system:node:" + name }

const nodeGroup = "system:nodes"

var controllerGroups = []string{"system:serviceaccounts", "system:serviceaccounts:kube-system"}

// issueClient issues (or reuses) the client certificate for user.
func issueClient(ca *pki.Authority, file, user string, groups ...string) (*pki.Issued, error) {
	return ca.Issue(pki.Leaf{Name: file, CommonName: user, Organization: groups, Client: true})
}

// NodeClients makes each node agent's client: nodeUser(name) in nodeGroup,
// authenticated by a token of its own (nodetokens.go) over the transport
// all node clients share, so a thousand nodes hold one connection to the
// apiserver, not a thousand. All nodes share one rate limiter, the control
// plane's budget for a client.
type NodeClients struct {
	c       *Cluster
	limiter flowcontrol.RateLimiter
}

// NodeClients returns the node agents' client maker.
func (c *Cluster) NodeClients() *NodeClients {
	n := &NodeClients{c: c}
	if c.cfg.APIQPS > 0 {
		n.limiter = flowcontrol.NewTokenBucketRateLimiter(c.cfg.APIQPS, c.cfg.APIBurst)
	}
	return n
}

// Client returns the client node name acts with, with a fresh token (the
// node's earlier one, if any, stops working).
func (n *NodeClients) Client(name string) (kubernetes.Interface, error) {
	token, err := n.c.nodeTokens.issue(name)
	if err != nil {
		return nil, err
	}
	rc := &rest.Config{
		Host:            n.c.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: n.c.CA.CertPEM()},
		BearerToken:     token,
		QPS:             n.c.cfg.APIQPS,
		Burst:           n.c.cfg.APIBurst,
		RateLimiter:     n.limiter,
		UserAgent:       nodeUser(name),
	}
	return kubernetes.NewForConfig(rc)
}

// Revoke makes node name's token unknown to the apiserver (the node has
// been removed).
func (n *NodeClients) Revoke(name string) { n.c.nodeTokens.revoke(name) }

// clusterRoles are the roles quartet's own components need beyond upstream's
// bootstrap policy. They are applied on every start, so an upgrade that
// changes them takes effect.
func clusterRoles() []rbacv1.ClusterRole {
	return []rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "quartet:node-agents"},
			Rules: []rbacv1.PolicyRule{
				// The node agents' shared informers; nothing else.
				{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods", "nodes"}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "quartet:local-path-provisioner"},
			Rules: []rbacv1.PolicyRule{
				{Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}, APIGroups: []string{""}, Resources: []string{"persistentvolumes"}},
				{Verbs: []string{"get", "list", "watch", "update", "patch"}, APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}},
				{Verbs: []string{"get", "list", "watch", "create", "update", "patch"}, APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses"}},
				{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"nodes", "pods"}},
				{Verbs: []string{"create", "patch", "update"}, APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "quartet:dns"},
			Rules: []rbacv1.PolicyRule{
				{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods", "namespaces"}},
				{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}},
				{Verbs: []string{"get", "create", "update"}, APIGroups: []string{""}, Resources: []string{"services"}},
			},
		},
	}
}

func clusterRoleBindings() []rbacv1.ClusterRoleBinding {
	bind := func(name, role, user string) rbacv1.ClusterRoleBinding {
		return rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}
	}
	return []rbacv1.ClusterRoleBinding{
		bind("quartet:node-agents", "quartet:node-agents", userNodeAgents),
		bind("quartet:local-path-provisioner", "quartet:local-path-provisioner", userProvisioner),
		bind("quartet:dns", "quartet:dns", userDNS),
		bind("quartet:workload-controllers", "system:kube-controller-manager", userWorkloadInformers),
	}
}

// obsoleteBindings were quartet's once and grant what no component should
// have now: applyRBAC deletes them from data dirs of earlier versions.
var obsoleteBindings = []string{
	// The node agents' shared identity had system:node's permissions
	// cluster-wide; each node has its own identity now.
	"quartet:node-agents:system-node",
}

// applyRBAC creates or updates quartet's roles and bindings.
func applyRBAC(ctx context.Context, c kubernetes.Interface) error {
	for _, name := range obsoleteBindings {
		err := c.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("clusterrolebinding %s: %w", name, err)
		}
	}
	for _, r := range clusterRoles() {
		cur, err := c.RbacV1().ClusterRoles().Get(ctx, r.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = c.RbacV1().ClusterRoles().Create(ctx, &r, metav1.CreateOptions{})
		case err == nil:
			cur.Rules = r.Rules
			_, err = c.RbacV1().ClusterRoles().Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("clusterrole %s: %w", r.Name, err)
		}
	}
	for _, b := range clusterRoleBindings() {
		cur, err := c.RbacV1().ClusterRoleBindings().Get(ctx, b.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{})
		case err == nil && (cur.RoleRef != b.RoleRef):
			// The role of a binding is immutable: replace it.
			if err = c.RbacV1().ClusterRoleBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}); err == nil {
				_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{})
			}
		case err == nil:
			cur.Subjects = b.Subjects
			_, err = c.RbacV1().ClusterRoleBindings().Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("clusterrolebinding %s: %w", b.Name, err)
		}
	}
	return nil
}
