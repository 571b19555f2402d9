package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"quartet.dev/quartet/internal/datadir"
	"quartet.dev/quartet/test/cluster"
)

// TestStartUnderRace runs `quartet up` built with the race detector
// ($QUARTET_RACE_BIN; `make race` builds it and runs this test): a start
// with simulated nodes, storage and DNS, a pod with a claim, a restart, a
// stop. Any
// data race the detector sees, in quartet or in the libraries it starts, is
// a failure. Start-up once crashed with concurrent map writes when the
// storage provisioner registered types into client-go's scheme while other
// components decoded with it.
func TestStartUnderRace(t *testing.T) {
	bin := os.Getenv("QUARTET_RACE_BIN")
	if bin == "" {
		t.Skip("QUARTET_RACE_BIN is unset (make race builds the binary and runs this test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := start(t, cluster.Options{Bin: bin, Args: []string{"--nodes=2", "--runtime=sim"}, ReadyTimeout: 10 * time.Minute})
	kubectl(t, c, `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`, "apply", "-f", "-")
	// Stdout only: the race binary's kubectl logs "Data race detection
	// enabled" on stderr.
	k := kubectls(t, c)[0]
	waitFor(t, ctx, "writer Running", func() (bool, string) {
		out, errOut, code := k.run(ctx, "", "get", "pod", "writer", "-o", "jsonpath={.status.phase}")
		return code == 0 && out == "Running", out + errOut
	})
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	kubectl(t, c, "", "get", "pvc", "data")
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(datadir.Dir(c.DataDir).StderrLog())
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(b), "WARNING: DATA RACE"); i >= 0 {
		report := string(b[i:])
		if j := strings.Index(report, "=================="); j > 0 {
			report = report[:j]
		}
		t.Errorf("the race detector found a data race:\n%s", report)
	}
}
