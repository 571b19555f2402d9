package controlplane

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
	userNodeAgents        = "quartet:node-agents"
	userProvisioner       = "quartet:local-path-provisioner"
	userDNS               = "quartet:dns"
	// userWorkloadInformers lists and watches for the workload controllers,
	// quartet's or upstream's, so their API requests are counted apart
	// from the rest of the controller manager's.
	userWorkloadInformers = "quartet:workload-controllers"
)

// controllerUser is the identity of one of quartet's workload controllers.
func controllerUser(serviceAccount string) string {
	return "system:serviceaccount:kube-system:" + serviceAccount
}

var controllerGroups = []string{"system:serviceaccounts", "system:serviceaccounts:kube-system"}

// issueClient issues (or reuses) the client certificate for user.
func issueClient(ca *pki.Authority, file, user string, groups ...string) (*pki.Issued, error) {
	return ca.Issue(pki.Leaf{Name: file, CommonName: user, Organization: groups, Client: true})
}

// clusterRoles are the roles quartet's own components need beyond upstream's
// bootstrap policy. They are applied on every start, so an upgrade that
// changes them takes effect.
func clusterRoles() []rbacv1.ClusterRole {
	return []rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "quartet:node-agents"},
			Rules: []rbacv1.PolicyRule{
				// What system:node lacks for agents that also leave the cluster.
				{Verbs: []string{"delete"}, APIGroups: []string{""}, Resources: []string{"nodes"}},
				{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumes", "persistentvolumeclaims", "configmaps", "secrets", "nodes", "services"}},
				{Verbs: []string{"create", "patch", "update"}, APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}},
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
		bind("quartet:node-agents:system-node", "system:node", userNodeAgents),
		bind("quartet:node-agents", "quartet:node-agents", userNodeAgents),
		bind("quartet:local-path-provisioner", "quartet:local-path-provisioner", userProvisioner),
		bind("quartet:dns", "quartet:dns", userDNS),
		bind("quartet:workload-controllers", "system:kube-controller-manager", userWorkloadInformers),
	}
}

// applyRBAC creates or updates quartet's roles and bindings.
func applyRBAC(ctx context.Context, c kubernetes.Interface) error {
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
