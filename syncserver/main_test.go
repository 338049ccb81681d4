package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/demo"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/pgtest"
	"github.com/leadify/leadify/syncserver/postgres/queries"
	"github.com/leadify/leadify/syncserver/secrets"
	"github.com/leadify/leadify/syncserver/servertest"
)

// buildServer compiles the real binary once per test run.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "leadify-server")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuf
}

// syncBuf collects a process's output while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func startServer(t *testing.T, bin string, env []string, addr string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", addr)
	cmd.Env = servertest.ProcessEnv(env...)
	p := &proc{cmd: cmd, addr: addr, logs: &syncBuf{}}
	cmd.Stderr = p.logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not become ready; logs:\n%s", p.logs)
	return nil
}

func runBin(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = servertest.ProcessEnv(env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v: %s", bin, args, out)
	return string(out)
}

// The whole binary: migrate at start, seed the demo, serve Connect, survive
// kill -9 with every acknowledged write intact, and stop cleanly on SIGTERM.
func TestServerBinary(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	db := pgtest.New(t)
	key := secrets.GenerateKey("k1")
	env := []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_MIGRATE_DATABASE_URL=" + db.OwnerURL, "LEADIFY_SECRET_KEYS=" + key}
	ctx := context.Background()

	out := runBin(t, bin, env, "seed-demo")
	require.Contains(t, out, "salma@arganbeauty.ma")
	require.Contains(t, out, demo.DefaultPassword)
	require.Contains(t, runBin(t, bin, env, "seed-demo"), "salma@arganbeauty.ma", "seeding twice is harmless")

	addr := freeAddr(t)
	p := startServer(t, bin, env, addr)
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ok\n", string(body))

	base := "http://" + addr
	authc := leadifyv1connect.NewAuthServiceClient(http.DefaultClient, base)
	login, err := authc.Login(ctx, connect.NewRequest(&leadifyv1.LoginRequest{Email: "salma@arganbeauty.ma", Password: demo.DefaultPassword}))
	require.NoError(t, err)
	bearer := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+login.Msg.Token)
			return next(ctx, req)
		}
	}))
	acc := leadifyv1connect.NewAccountsServiceClient(http.DefaultClient, base, bearer)
	stores, err := acc.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	require.NoError(t, err)
	require.Len(t, stores.Msg.Stores, 2)
	sellers, err := acc.ListSellers(ctx, connect.NewRequest(&leadifyv1.ListSellersRequest{}))
	require.NoError(t, err)

	// Acknowledged writes, then kill -9 right after the last acknowledgement.
	var created []string
	for i := range 5 {
		r, err := acc.CreateStore(ctx, connect.NewRequest(&leadifyv1.CreateStoreRequest{SellerId: sellers.Msg.Sellers[0].Id,
			Settings: &leadifyv1.StoreSettings{Name: fmt.Sprintf("Durable %d", i)}}))
		require.NoError(t, err)
		created = append(created, r.Msg.Store.Id)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()

	p = startServer(t, bin, env, addr)
	stores, err = acc.ListStores(ctx, connect.NewRequest(&leadifyv1.ListStoresRequest{}))
	require.NoError(t, err, "the session survives the restart")
	var names []string
	for _, s := range stores.Msg.Stores {
		names = append(names, s.Id)
	}
	require.Subset(t, names, created, "every acknowledged store survives kill -9")

	// SIGTERM: graceful stop, exit status 0.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.cmd.Wait(), "logs:\n%s", p.logs)
	require.Contains(t, p.logs.String(), `"msg":"stopped"`)
}

func TestRotateSecretsCommand(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	db := pgtest.New(t)
	ctx := context.Background()
	oldKey, newKey := secrets.GenerateKey("old"), secrets.GenerateKey("new")
	oldRing, err := secrets.ParseKeyring(oldKey)
	require.NoError(t, err)

	runBin(t, bin, []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + oldKey}, "seed-demo")
	var storeID uuid.UUID
	require.NoError(t, postgres.InTx(ctx, db.App, postgres.Scope{AllStores: true}, func(tx *postgres.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM stores LIMIT 1`).Scan(&storeID); err != nil {
			return err
		}
		for i := range 3 {
			id := uuid.New()
			sealed, err := oldRing.Seal([]byte(fmt.Sprintf(`{"token":"tok-%d"}`, i)), postgres.CarrierCredentialsAD(id))
			if err != nil {
				return err
			}
			if err := tx.Q.InsertCarrierAccount(ctx, tx, queries.InsertCarrierAccountParams{ID: id, StoreID: storeID,
				Carrier: "coliix", Credentials: sealed}); err != nil {
				return err
			}
		}
		return nil
	}))

	runBin(t, bin, []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + newKey + "," + oldKey}, "rotate-secrets")

	newOnly, err := secrets.ParseKeyring(newKey)
	require.NoError(t, err)
	require.NoError(t, postgres.InTx(ctx, db.App, postgres.StoreScope(storeID), func(tx *postgres.Tx) error {
		rows, err := tx.Q.ListCarrierAccountSecrets(ctx, tx, queries.ListCarrierAccountSecretsParams{Lim: 10})
		require.NoError(t, err)
		require.Len(t, rows, 3)
		for _, r := range rows {
			require.True(t, strings.HasPrefix(r.Credentials, "v1:new:"))
			require.NotContains(t, r.Credentials, "tok-")
			plain, err := newOnly.Open(r.Credentials, postgres.CarrierCredentialsAD(r.ID))
			require.NoError(t, err, "opens with the new key alone")
			require.Contains(t, string(plain), `"token":"tok-`)
		}
		return nil
	}))
}

// A client not written here — buf curl, from the tools module — signs in with
// both the Connect and the gRPC protocol.
func TestBufCurlLogin(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	db := pgtest.New(t)
	env := []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + secrets.GenerateKey("k1")}
	runBin(t, bin, env, "seed-demo")
	addr := freeAddr(t)
	startServer(t, bin, env, addr)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		cmd := exec.Command("go", "tool", "-modfile="+filepath.Join(root, ".tools/go.mod"), "buf", "curl",
			"--schema", filepath.Join(root, "proto"), "--protocol", protocol, "--http2-prior-knowledge",
			"-d", `{"email":"salma@arganbeauty.ma","password":"`+demo.DefaultPassword+`"}`,
			"http://"+addr+"/leadify.v1.AuthService/Login")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", protocol, out)
		require.Contains(t, string(out), `"token": "lfy_`, protocol)
		require.Contains(t, string(out), `"email": "salma@arganbeauty.ma"`, protocol)
	}
}

// seed-demo imports the sample seller sheet and prints its per-row report; a
// second run finds every row unchanged.
func TestSeedDemoImportsTheSampleSheet(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	db := pgtest.New(t)
	env := []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + secrets.GenerateKey("k1")}
	out := runBin(t, bin, env, "seed-demo")
	require.Contains(t, out, "→ Argan Beauty: 989 rows")
	require.Contains(t, out, "rejected, invalid_phone")
	require.Contains(t, out, "rejected, unparseable_price")
	again := runBin(t, bin, env, "seed-demo")
	require.Regexp(t, `0 imported, 0 updated, \d+ unchanged`, again)
}

// The demo's carrier sandbox: confirmed leads become parcels at the fake
// Coliix on their own and move to delivered or returned through webhooks.
func TestDemoCarriers(t *testing.T) {
	t.Parallel()
	bin := buildServer(t)
	db := pgtest.New(t)
	addr := freeAddr(t)
	env := []string{"DATABASE_URL=" + db.AppURL, "LEADIFY_SECRET_KEYS=" + secrets.GenerateKey("k1"), "LEADIFY_DEMO_STEP=150ms"}
	runBin(t, bin, env, "seed-demo")
	startServer(t, bin, env, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo-carriers", "--addr", addr)
	cmd.Env = servertest.ProcessEnv(env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "parcels reached an end")
	require.Regexp(t, `→ (delivered|returned)`, string(out))
}
