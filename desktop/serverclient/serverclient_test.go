package serverclient_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/desktop/internal/fakeserver"
	"github.com/leadify/leadify/desktop/serverclient"
	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
)

func setup(t *testing.T) *fakeserver.Server {
	t.Helper()
	srv := fakeserver.Start(t)
	srv.AddUser("sara@example.ma", "s3cret-pass", "Sara Benali")
	srv.AddStore(&leadifyv1.Store{SellerId: "sel-1", Settings: &leadifyv1.StoreSettings{Name: "Atlas Shop"}},
		"sara@example.ma")
	srv.AddStore(&leadifyv1.Store{SellerId: "sel-2", Settings: &leadifyv1.StoreSettings{Name: "Not hers"}},
		"other@example.ma")
	return srv
}

func client(t *testing.T, url, token string) *serverclient.Client {
	t.Helper()
	c, err := serverclient.New(serverclient.Config{BaseURL: url, Token: token, Timeout: 2 * time.Second})
	require.NoError(t, err)
	return c
}

func TestLoginThenAuthenticatedCalls(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := setup(t)

	res, err := client(t, srv.URL, "").Login(ctx, "sara@example.ma", "s3cret-pass", "test laptop")
	require.NoError(t, err)
	require.NotEmpty(t, res.GetToken())
	require.Equal(t, "Sara Benali", res.GetUser().GetFullName())

	c := client(t, srv.URL+"/", res.GetToken())
	me, err := c.Me(ctx)
	require.NoError(t, err)
	require.Equal(t, "sara@example.ma", me.GetUser().GetEmail())

	stores, err := c.ListStores(ctx)
	require.NoError(t, err)
	require.Len(t, stores, 1)
	require.Equal(t, "Atlas Shop", stores[0].GetSettings().GetName())

	require.NoError(t, c.Logout(ctx))
	_, err = c.ListStores(ctx)
	require.ErrorIs(t, err, serverclient.ErrSessionExpired)
	require.EqualError(t, err, "your session has ended — please sign in again")
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv := setup(t)
	c := client(t, srv.URL, "")

	_, err := c.Login(ctx, "nobody@example.ma", "x", "d")
	require.ErrorIs(t, err, serverclient.ErrWrongCredentials)
	require.EqualError(t, err, "wrong email or password")

	for range fakeserver.MaxFailedLogins {
		_, err = c.Login(ctx, "sara@example.ma", "wrong", "d")
		require.ErrorIs(t, err, serverclient.ErrWrongCredentials)
	}
	_, err = c.Login(ctx, "sara@example.ma", "s3cret-pass", "d")
	require.ErrorIs(t, err, serverclient.ErrTooManyAttempts)
	require.EqualError(t, err, "too many attempts, try again in 15 minutes")
	var se *serverclient.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, fakeserver.RetryAfter, se.RetryAfter)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce, "the connect error stays reachable")
	require.Equal(t, connect.CodeResourceExhausted, ce.Code())
}

func TestTokenSentOnlyWhenSet(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	_, err := client(t, srv.URL, "").ListStores(t.Context())
	require.ErrorIs(t, err, serverclient.ErrSessionExpired)
	_, err = client(t, srv.URL, "forged").Me(t.Context())
	require.ErrorIs(t, err, serverclient.ErrSessionExpired)
	require.Equal(t, 1, srv.Calls(leadifyv1connect.AccountsServiceListStoresProcedure))
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("unavailable", func(t *testing.T) {
		t.Parallel()
		srv := setup(t)
		srv.SetUnavailable(true)
		_, err := client(t, srv.URL, "tok").ListStores(ctx)
		require.ErrorIs(t, err, serverclient.ErrUnreachable)
		require.EqualError(t, err, "server unreachable — working offline")
		_, err = client(t, srv.URL, "").Login(ctx, "sara@example.ma", "s3cret-pass", "d")
		require.ErrorIs(t, err, serverclient.ErrUnreachable)
		require.EqualError(t, err, "server unreachable — check the address and your connection")
	})

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		srv := setup(t)
		srv.Close()
		_, err := client(t, srv.URL, "tok").Me(ctx)
		require.ErrorIs(t, err, serverclient.ErrUnreachable)
	})

	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		// A listener that accepts connections and never answers.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		done := make(chan struct{})
		t.Cleanup(func() { _ = ln.Close(); <-done })
		go func() {
			defer close(done)
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				conns = append(conns, conn)
			}
		}()
		c, err := serverclient.New(serverclient.Config{BaseURL: "http://" + ln.Addr().String(), Timeout: 200 * time.Millisecond})
		require.NoError(t, err)
		start := time.Now()
		_, err = c.Me(ctx)
		require.ErrorIs(t, err, serverclient.ErrUnreachable)
		require.Less(t, time.Since(start), 5*time.Second)
	})
}

func TestNotLeadify(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	// The fake serves only the two services: any other path is a 404.
	_, err := client(t, srv.URL+"/some/prefix", "").Login(t.Context(), "a@b.c", "p", "d")
	require.ErrorIs(t, err, serverclient.ErrNotLeadify)
	require.False(t, errors.Is(err, serverclient.ErrUnreachable))
}

func TestNewRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		_, err := serverclient.New(serverclient.Config{BaseURL: u})
		require.Error(t, err, u)
	}
}

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		" http://127.0.0.1:8080/ ":  "http://127.0.0.1:8080",
		"localhost:8080":            "http://localhost:8080",
		"192.168.1.20:8080":         "http://192.168.1.20:8080",
		"leadify.example.ma":        "https://leadify.example.ma",
		"https://leadify.ma/api//":  "https://leadify.ma/api",
		"HTTP://127.0.0.1:8080":     "http://127.0.0.1:8080",
		"http://[::1]:8080":         "http://[::1]:8080",
		"leadify.example.ma:443/x/": "https://leadify.example.ma:443/x",
	} {
		got, err := serverclient.NormalizeURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "   ", "ftp://x.ma", "http://", "http://bad host"} {
		_, err := serverclient.NormalizeURL(in)
		require.Error(t, err, in)
	}
}
