package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/servertest"
)

func codeOf(err error) connect.Code { return connect.CodeOf(err) }

func login(c *servertest.Clients, email, pw string) (*connect.Response[leadifyv1.LoginResponse], error) {
	return c.Auth.Login(context.Background(), connect.NewRequest(&leadifyv1.LoginRequest{Email: email, Password: pw, DeviceName: "test"}))
}

func TestLoginLogoutAndMe(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.CreateUser("Sara@Example.ma", "Sara", false)
	anon := env.ClientsFor("")

	resp, err := login(anon, "  sara@example.MA ", servertest.Password)
	require.NoError(t, err, "email matching ignores case and spaces")
	require.True(t, strings.HasPrefix(resp.Msg.Token, "lfy_"))
	require.WithinDuration(t, time.Now().Add(30*24*time.Hour), resp.Msg.ExpiresAt.AsTime(), time.Minute)

	c := env.ClientsFor(resp.Msg.Token)
	me, err := c.Auth.Me(context.Background(), connect.NewRequest(&leadifyv1.MeRequest{}))
	require.NoError(t, err)
	require.Equal(t, "Sara", me.Msg.User.FullName)
	require.Empty(t, me.Msg.Memberships)

	_, err = c.Auth.Logout(context.Background(), connect.NewRequest(&leadifyv1.LogoutRequest{}))
	require.NoError(t, err)
	_, err = c.Auth.Me(context.Background(), connect.NewRequest(&leadifyv1.MeRequest{}))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err), "a revoked token no longer works")
}

func TestLoginRefusesWrongPasswordAndUnknownUserAlike(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.CreateUser("karim@example.ma", "Karim", false)
	anon := env.ClientsFor("")

	_, errWrong := login(anon, "karim@example.ma", "not the password")
	_, errUnknown := login(anon, "nobody@example.ma", "not the password")
	require.Equal(t, connect.CodeUnauthenticated, codeOf(errWrong))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(errUnknown))
	require.Equal(t, errWrong.(*connect.Error).Message(), errUnknown.(*connect.Error).Message(),
		"the answer must not reveal which accounts exist")

	_, err := login(anon, "", "")
	require.Equal(t, connect.CodeInvalidArgument, codeOf(err))
}

func TestBadTokensAreUnauthenticated(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	for _, tok := range []string{"", "garbage", "lfy_" + strings.Repeat("A", 43), "Bearer lfy_x", strings.Repeat("x", 10000)} {
		_, err := env.ClientsFor(tok).Auth.Me(context.Background(), connect.NewRequest(&leadifyv1.MeRequest{}))
		require.Equal(t, connect.CodeUnauthenticated, codeOf(err), "token %q", tok[:min(len(tok), 20)])
	}

	env.CreateUser("expired@example.ma", "E", false)
	c := env.Login("expired@example.ma")
	_, err := env.DB.App.Exec(context.Background(), `UPDATE sessions SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	_, err = c.Auth.Me(context.Background(), connect.NewRequest(&leadifyv1.MeRequest{}))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err), "an expired token no longer works")
}

// The limit must hold whichever server instance the attempts reach, so the
// attempts alternate between two instances on one database.
func TestLoginThrottleHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	limits := auth.Limits{AccountFailures: 3, AddressFailures: 100, Window: time.Minute, Lockout: time.Hour, SessionTTL: time.Hour}
	a := servertest.Start(t, servertest.WithAuthLimits(limits))
	b := servertest.StartOn(t, a.DB, servertest.WithAuthLimits(limits))
	a.CreateUser("target@example.ma", "T", false)
	a.CreateUser("other@example.ma", "O", false)

	instances := []*servertest.Env{a, b, a}
	for i, env := range instances {
		_, err := login(env.ClientsFor(""), "target@example.ma", "wrong password")
		want := connect.CodeUnauthenticated
		if i == len(instances)-1 {
			want = connect.CodeResourceExhausted
		}
		require.Equal(t, want, codeOf(err), "attempt %d", i+1)
	}
	_, err := login(b.ClientsFor(""), "target@example.ma", servertest.Password)
	require.Equal(t, connect.CodeResourceExhausted, codeOf(err), "even the right password waits out the lock")
	require.Contains(t, err.Error(), "try again after")

	_, err = login(b.ClientsFor(""), "other@example.ma", servertest.Password)
	require.NoError(t, err, "other accounts are not locked by one account's failures")
}

func TestLoginThrottlesAnAddressTryingManyAccounts(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t, servertest.WithAuthLimits(auth.Limits{AccountFailures: 100, AddressFailures: 4,
		Window: time.Minute, Lockout: time.Hour, SessionTTL: time.Hour}))
	env.CreateUser("real@example.ma", "R", false)
	var err error
	for i := range 4 {
		_, err = login(env.ClientsFor(""), "guess"+string(rune('a'+i))+"@example.ma", "password123")
	}
	require.Equal(t, connect.CodeResourceExhausted, codeOf(err))
	_, err = login(env.ClientsFor(""), "real@example.ma", servertest.Password)
	require.Equal(t, connect.CodeResourceExhausted, codeOf(err), "the address stays locked")
}

func TestChangePasswordRevokesOtherSessions(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.CreateUser("amina@example.ma", "Amina", false)
	laptop, phone := env.Login("amina@example.ma"), env.Login("amina@example.ma")
	ctx := context.Background()

	_, err := laptop.Auth.ChangePassword(ctx, connect.NewRequest(&leadifyv1.ChangePasswordRequest{CurrentPassword: "wrong one", NewPassword: "a new password 123"}))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err))
	_, err = laptop.Auth.ChangePassword(ctx, connect.NewRequest(&leadifyv1.ChangePasswordRequest{CurrentPassword: servertest.Password, NewPassword: "short"}))
	require.Equal(t, connect.CodeInvalidArgument, codeOf(err))

	_, err = laptop.Auth.ChangePassword(ctx, connect.NewRequest(&leadifyv1.ChangePasswordRequest{CurrentPassword: servertest.Password, NewPassword: "a new password 123"}))
	require.NoError(t, err)
	_, err = laptop.Auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	require.NoError(t, err, "the session that changed the password stays")
	_, err = phone.Auth.Me(ctx, connect.NewRequest(&leadifyv1.MeRequest{}))
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err), "other sessions end")
	_, err = login(env.ClientsFor(""), "amina@example.ma", servertest.Password)
	require.Equal(t, connect.CodeUnauthenticated, codeOf(err))
	_, err = login(env.ClientsFor(""), "amina@example.ma", "a new password 123")
	require.NoError(t, err)
}

func TestOversizedAndMalformedRequests(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	_, err := login(env.ClientsFor(""), "x@example.ma", strings.Repeat("p", 9<<20))
	require.Equal(t, connect.CodeResourceExhausted, codeOf(err), "messages over the limit are refused before parsing")

	req, err := env.HTTP.Post(env.URL+"/leadify.v1.AuthService/Login", "application/json", strings.NewReader(`{"email": 12`))
	require.NoError(t, err)
	defer req.Body.Close()
	require.Equal(t, 400, req.StatusCode, "malformed JSON is a client error")
}

func TestLoginOverGRPCAndGRPCWeb(t *testing.T) {
	t.Parallel()
	env := servertest.Start(t)
	env.CreateUser("grpc@example.ma", "G", false)
	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpc-web": connect.WithGRPCWeb()} {
		resp, err := login(env.ClientsFor("", opt), "grpc@example.ma", servertest.Password)
		require.NoError(t, err, name)
		require.NotEmpty(t, resp.Msg.Token, name)
	}
}
