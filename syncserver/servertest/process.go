package servertest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/secrets"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// ServerBinary builds leadify-server once per test binary and returns its path.
func ServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "leadify-server-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "leadify-server")
		cmd := exec.Command("go", "build", "-o", binPath, "./syncserver")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("build leadify-server: %v", buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// StartProcess runs the real leadify-server binary as its own process on a new
// test database — for benchmarks that must not share a process (or a CPU
// budget illusion) with the client — and returns an Env whose URL points at it.
// env entries (KEY=value) override the server's environment.
func StartProcess(t testing.TB, env ...string) *Env {
	t.Helper()
	return StartProcessOn(t, pgtest.New(t), env...)
}

// StartProcessOn runs the real leadify-server binary as its own process on an
// existing test database: a restart after Kill, or another instance. Without
// LEADIFY_SECRET_KEYS in env, each process gets a new key.
func StartProcessOn(t testing.TB, db *pgtest.DB, env ...string) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(ServerBinary(t), "serve", "--addr", addr, "--log-level", "warn")
	cmd.Env = ProcessEnv(append([]string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + secrets.GenerateKey("bench")}, env...)...)
	cmd.Stderr = os.Stderr
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("leadify-server did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Env{T: t, DB: db, URL: url, HTTP: h2cClient(), PID: cmd.Process.Pid,
		kill: func() { _ = cmd.Process.Signal(syscall.SIGKILL); <-exited }}
}

// ProcessEnv is the environment for a leadify-server process a test starts:
// the test's own, with the database settings the developer's shell exports
// (.dev/env.sh) blanked — the process must never migrate or use the shared
// dev database — then env (later entries win).
func ProcessEnv(env ...string) []string {
	return append(append(os.Environ(), "DATABASE_URL=", "LEADIFY_MIGRATE_DATABASE_URL="), env...)
}

// Kill sends SIGKILL to a server started with StartProcess or StartProcessOn
// and returns once the process is gone (its sockets closed).
func (e *Env) Kill() {
	e.T.Helper()
	if e.kill == nil {
		e.T.Fatal("Kill: the server is not a process of its own")
	}
	e.kill()
}
