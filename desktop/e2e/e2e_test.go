package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/localstore"
)

// Colours the UI paints in solid blocks (see frontend/src/styles.css), used to
// tell from a screenshot which screen is showing.
var (
	brandMark  = color.RGBA{0xf5, 0x9e, 0x0b, 0xff} // .logo-mark, on every screen
	onlinePill = color.RGBA{0xdc, 0xfc, 0xe7, 0xff} // .pill--online, stores page only
	offline    = color.RGBA{0xfe, 0xf3, 0xc7, 0xff} // .pill--offline and .banner
	storeCount = color.RGBA{0xe2, 0xe8, 0xf0, 0xff} // .count, once the stores are listed
)

func TestDesktopSignInShowsStores(t *testing.T) {
	bin := e2eBinary(t)
	url, email, password := startServer(t)
	display := startXvfb(t)
	dataDir := t.TempDir()
	app := startApp(t, bin, display, dataDir, url)

	win := waitForWindow(t, display, "Leadify")
	path := screenshotPath(t)
	signInShot := waitForScreen(t, display, "the sign-in form", 60*time.Second, func(s *screenshot) bool {
		return s.count(brandMark) > 1000
	})
	signInPath := strings.TrimSuffix(path, ".png") + "-signin.png"
	require.NoError(t, os.WriteFile(signInPath, signInShot.raw, 0o644))

	// The email field has focus and the server URL is prefilled: type, Tab, type, Enter.
	xdotool(t, display, "mousemove", "--window", win, "200", "200")
	xdotool(t, display, "windowfocus", "--sync", win)
	xdotool(t, display, "type", "--delay", "30", email)
	xdotool(t, display, "key", "Tab")
	xdotool(t, display, "type", "--delay", "30", password)
	xdotool(t, display, "key", "Return")

	// The Go side saved the session and cached the stores...
	dbPath := filepath.Join(dataDir, "leadify.db")
	require.Eventually(t, func() bool {
		sess, stores, err := readLocal(t.Context(), dbPath)
		return err == nil && sess.User.Email == email && len(stores) > 0
	}, 30*time.Second, 250*time.Millisecond, "signed-in session and stores never reached %s\napp output:\n%s", dbPath, app.output())

	// ...and the UI shows them with the connection online.
	shot := waitForScreen(t, display, "the stores page", 30*time.Second, func(s *screenshot) bool {
		return s.count(onlinePill) > 500 && s.count(storeCount) > 100
	})
	require.NoError(t, os.WriteFile(path, shot.raw, 0o644))
	t.Logf("screenshots: %s, %s", signInPath, path)
	require.Greater(t, shot.distinctColours(), 500, "the screenshot looks blank")

	app.stop(t)
	sess, stores, err := readLocal(t.Context(), dbPath)
	require.NoError(t, err)
	require.Equal(t, url, sess.ServerURL)
	t.Logf("signed in as %s (%s); %d stores cached", sess.User.FullName, sess.User.Email, len(stores))

	// Restarted with the server out of reach, the app is still signed in and shows
	// the cached stores, marked offline.
	sess.ServerURL = unreachableURL(t)
	require.NoError(t, saveLocal(t.Context(), dbPath, sess))
	app = startApp(t, bin, display, dataDir, url)
	waitForWindow(t, display, "Leadify")
	shot = waitForScreen(t, display, "the offline stores page", 30*time.Second, func(s *screenshot) bool {
		return s.count(offline) > 2000 && s.count(storeCount) > 100
	})
	offlinePath := strings.TrimSuffix(path, ".png") + "-offline.png"
	require.NoError(t, os.WriteFile(offlinePath, shot.raw, 0o644))
	t.Logf("screenshot: %s", offlinePath)
	app.stop(t)
}

// unreachableURL returns the URL of a local port nothing listens on.
func unreachableURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// e2eBinary skips the test unless LEADIFY_E2E=1 and returns the absolute path of
// the desktop binary named by LEADIFY_DESKTOP_BIN.
func e2eBinary(t *testing.T) string {
	t.Helper()
	if os.Getenv("LEADIFY_E2E") != "1" {
		t.Skip("set LEADIFY_E2E=1 and LEADIFY_DESKTOP_BIN=<built binary> to run the end-to-end test")
	}
	bin, err := filepath.Abs(os.Getenv("LEADIFY_DESKTOP_BIN"))
	require.NoError(t, err)
	info, err := os.Stat(bin)
	require.NoError(t, err, "LEADIFY_DESKTOP_BIN must name the built desktop binary (a relative path is taken from desktop/e2e)")
	require.False(t, info.IsDir(), "LEADIFY_DESKTOP_BIN is a directory")
	for _, tool := range []string{"Xvfb", "xdotool", "import"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "the end-to-end test needs %s (Debian: xvfb, xdotool, imagemagick)", tool)
	}
	return bin
}

func screenshotPath(t *testing.T) string {
	if p := os.Getenv("LEADIFY_E2E_SCREENSHOT"); p != "" {
		p, err := filepath.Abs(p)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		return p
	}
	return filepath.Join(t.TempDir(), "stores.png")
}

// startXvfb starts a virtual X server on a free display and returns its name
// (":99"). Xvfb picks the display and reports it through -displayfd.
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	_ = w.Close()
	t.Cleanup(func() { stopProcess(t, "Xvfb", cmd, &out) })

	// Xvfb writes the number, then "\n": read both, or it dies writing to a closed pipe.
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		_, err := strconv.Atoi(n)
		require.NoError(t, err, "Xvfb did not report a display: %s", out.String())
		return ":" + n
	case <-time.After(15 * time.Second):
		t.Fatalf("Xvfb did not start: %s", out.String())
		return ""
	}
}

type appProcess struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// startApp runs the desktop binary on display with its own data directory and
// the server URL prefilled.
func startApp(t *testing.T, bin, display, dataDir, serverURL string) *appProcess {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DISPLAY="+display,
		"GDK_BACKEND=x11",
		"LEADIFY_DATA_DIR="+dataDir,
		"LEADIFY_SERVER_URL="+serverURL,
		"NO_AT_BRIDGE=1",                    // no accessibility bus in a bare X server
		"WEBKIT_DISABLE_COMPOSITING_MODE=1", // no GPU in Xvfb
		"XDG_CONFIG_HOME="+filepath.Join(dataDir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dataDir, "cache"),
		"XDG_DATA_HOME="+filepath.Join(dataDir, "share"),
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // WebKit's helpers go with it
	a := &appProcess{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { stopProcess(t, "app", cmd, a.out) })
	return a
}

func (a *appProcess) output() string { return a.out.String() }

// stop asks the app to quit (SIGTERM: it closes its window and database) and
// requires a clean exit.
func (a *appProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the app did not exit cleanly:\n%s", a.output())
	case <-time.After(15 * time.Second):
		t.Fatalf("the app did not quit within 15s of SIGTERM:\n%s", a.output())
	}
}

// stopProcess ends cmd and its process group if it is still running, at the end
// of the test.
func stopProcess(t *testing.T, name string, cmd *exec.Cmd, out *syncBuffer) {
	if cmd.ProcessState != nil {
		return
	}
	pgid := cmd.Process.Pid
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
		pgid = -pgid
	}
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-done
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", name, out.String())
	}
}

// xdotool runs xdotool on display and returns its trimmed output.
func xdotool(t *testing.T, display string, args ...string) string {
	t.Helper()
	out, err := xdotoolOutput(display, args...)
	require.NoError(t, err)
	return out
}

func xdotoolOutput(display string, args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+display)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("xdotool %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// waitForWindow returns the id of the visible window titled title.
func waitForWindow(t *testing.T, display, title string) string {
	t.Helper()
	var id string
	require.Eventually(t, func() bool {
		out, err := xdotoolOutput(display, "search", "--onlyvisible", "--name", "^"+title+"$")
		if err != nil || out == "" {
			return false
		}
		id = strings.Fields(out)[0]
		return true
	}, 60*time.Second, 250*time.Millisecond, "no window titled %q appeared", title)
	return id
}

// screenshot is a capture of the whole display.
type screenshot struct {
	raw []byte // PNG
	img image.Image
}

func takeScreenshot(display string) (*screenshot, error) {
	cmd := exec.Command("import", "-display", display, "-window", "root", "png:-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("import: %w: %s", err, stderr.String())
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode screenshot: %w", err)
	}
	return &screenshot{raw: raw, img: img}, nil
}

// count returns how many pixels are exactly c.
func (s *screenshot) count(c color.RGBA) int {
	n := 0
	b := s.img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(s.img.At(x, y)).(color.RGBA) == c {
				n++
			}
		}
	}
	return n
}

func (s *screenshot) distinctColours() int {
	seen := map[color.RGBA]struct{}{}
	b := s.img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			seen[color.RGBAModel.Convert(s.img.At(x, y)).(color.RGBA)] = struct{}{}
		}
	}
	return len(seen)
}

// waitForScreen takes screenshots until ready accepts one, and returns it.
func waitForScreen(t *testing.T, display, what string, timeout time.Duration, ready func(*screenshot) bool) *screenshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *screenshot
	var lastErr error
	for time.Now().Before(deadline) {
		s, err := takeScreenshot(display)
		if err == nil && ready(s) {
			return s
		}
		last, lastErr = s, err
		time.Sleep(500 * time.Millisecond)
	}
	if last != nil {
		p := filepath.Join(t.TempDir(), "last.png")
		_ = os.WriteFile(p, last.raw, 0o644)
		t.Logf("last screenshot: %s", p)
	}
	t.Fatalf("%s did not appear within %s (last error: %v)", what, timeout, lastErr)
	return nil
}

// readLocal reads the app's database: the saved session and cached stores.
func readLocal(ctx context.Context, path string) (localstore.Session, []localstore.Store, error) {
	if _, err := os.Stat(path); err != nil {
		return localstore.Session{}, nil, err
	}
	db, err := localstore.Open(ctx, path)
	if err != nil {
		return localstore.Session{}, nil, err
	}
	defer db.Close()
	sess, err := db.Session(ctx)
	if err != nil {
		return sess, nil, err
	}
	stores, err := db.Stores(ctx)
	return sess, stores, err
}

// saveLocal replaces the saved session in the app's database.
func saveLocal(ctx context.Context, path string, sess localstore.Session) error {
	db, err := localstore.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.SaveSession(ctx, sess)
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
