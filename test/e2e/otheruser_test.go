package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"quartet.dev/quartet/test/cluster"
)

// TestOtherUserToldPermissionDenied runs quartet's client commands as
// another user (uid 65534) against a data dir they cannot enter: they say
// permission denied, not that no quartet runs there.
func TestOtherUserToldPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a command as another user")
	}
	bin, err := cluster.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "q")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"node", "list", "--data-dir", dir},
		{"node", "add", "extra", "--data-dir", dir},
		{"kubectl", "get", "pods"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "QUARTET_DATA_DIR="+dir, "KUBECONFIG=", "HOME=/nonexistent")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("quartet %v as uid 65534 succeeded:\n%s", args, out)
			continue
		}
		if !strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "does not exist") {
			t.Errorf("quartet %v as uid 65534 said %q, want permission denied", args, strings.TrimSpace(string(out)))
		}
	}
}
