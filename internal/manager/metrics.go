package manager

import (
	// Client-go's metrics into Kubernetes' legacy registry, as
	// kube-controller-manager registers them: work queues (depth, adds,
	// latency, work duration, retries, under each queue's name), REST client
	// requests and leader election.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
)
