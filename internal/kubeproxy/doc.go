// Package kubeproxy routes Services: upstream kube-proxy's nftables proxier
// (k8s.io/kubernetes/pkg/proxy/nftables) runs inside quartet, fed by the
// same Service and EndpointSlice watches kube-proxy's own server sets up,
// so ClusterIPs and NodePorts behave exactly as in a cluster whose nodes run
// kube-proxy in nftables mode.
//
// It is built without kube-proxy's node manager, which ends the process
// (os.Exit) when its Node is deleted: a `quartet node remove` would take
// quartet down. Every node of quartet shares this machine's network, so one
// proxier serves them all, and one per machine: its table, "kube-proxy" in
// the ip family, is a fixed name. A lock file says which cluster has it; a
// second cluster on the machine runs without (see Start).
//
// It also publishes what quartet serves in-process (the apiserver, cluster
// DNS) as endpoints of their Services, on the host's address on the pod
// bridge, so that their ClusterIPs route.
package kubeproxy
