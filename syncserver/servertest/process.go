package servertest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
func StartProcess(t testing.TB, env ...string) *Env {
	t.Helper()
	db := pgtest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(ServerBinary(t), "serve", "--addr", addr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), append(env, "DATABASE_URL="+db.AppURL, "LEADIFY_SECRET_KEYS="+secrets.GenerateKey("bench"))...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
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
	return &Env{T: t, DB: db, URL: url, HTTP: h2cClient(), PID: cmd.Process.Pid}
}
