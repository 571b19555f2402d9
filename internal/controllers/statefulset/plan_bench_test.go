package statefulset

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// BenchmarkPlan1000 plans a steady Parallel set of 1,000 ready pods with a
// claim each: the work every pod event costs once a large set is up.
func BenchmarkPlan1000(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, 1000, parallel, withClaims)
	var pods []*v1.Pod
	var claims []*v1.PersistentVolumeClaim
	for i := 0; i < 1000; i++ {
		pods = append(pods, f.pod(i, f.r1, ready))
		claims = append(claims, f.claim(i))
	}
	in := observed{set: f.set, pods: pods, claims: claimMap(claims...), current: f.r1, update: f.r1, now: now, maxUnavailable: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decide(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanCreate1000 plans the first sync of a Parallel set of 1,000.
func BenchmarkPlanCreate1000(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, 1000, parallel, withClaims)
	in := observed{set: f.set, claims: map[string]*v1.PersistentVolumeClaim{}, current: f.r1, update: f.r1, now: now, maxUnavailable: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decide(in); err != nil {
			b.Fatal(err)
		}
	}
}
