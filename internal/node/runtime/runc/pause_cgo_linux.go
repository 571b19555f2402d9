//go:build linux && cgo

package runc

/*
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void quartet_pause_end(int sig) {
	(void)sig;
	_exit(0);
}

static void quartet_pause_reap(int sig) {
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

// A pod's pause container runs this binary with QUARTET_POD_PAUSE=1 as PID 1
// of its own PID namespace: it holds the pod's namespaces, reaps the
// orphans of a shared PID namespace and ends on SIGTERM or SIGINT. It runs
// before the Go runtime starts, so it costs a few pages, not a Go process.
__attribute__((constructor)) static void quartet_pause(void) {
	const char *v = getenv("QUARTET_POD_PAUSE");
	if (v == NULL || strcmp(v, "1") != 0 || getpid() != 1) {
		return;
	}
	prctl(PR_SET_NAME, "pause", 0, 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = quartet_pause_end;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = quartet_pause_reap;
	sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	for (;;) {
		pause();
	}
}
*/
import "C"
