package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/proto/gen/leadify/v1/leadifyv1connect"
	"github.com/leadify/leadify/syncserver/audit"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

type authHandler struct {
	pool *pgxpool.Pool
	auth *auth.Service
	log  *slog.Logger
}

var _ leadifyv1connect.AuthServiceHandler = (*authHandler)(nil)

func clientIP(peer connect.Peer) string {
	host, _, err := net.SplitHostPort(peer.Addr)
	if err != nil {
		return peer.Addr
	}
	return host
}

func sessionPB(s auth.Session) *leadifyv1.LoginResponse {
	return &leadifyv1.LoginResponse{Token: s.Token, ExpiresAt: timestamppb.New(s.ExpiresAt), User: userPB(s.User)}
}

func (h *authHandler) Login(ctx context.Context, req *connect.Request[leadifyv1.LoginRequest]) (*connect.Response[leadifyv1.LoginResponse], error) {
	m := req.Msg
	if m.Email == "" || m.Password == "" {
		return nil, toConnect(ctx, h.log, invalidf("email and password are required"))
	}
	sess, err := h.auth.Login(ctx, m.Email, m.Password, m.DeviceName, clientIP(req.Peer()))
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(sessionPB(sess)), nil
}

func (h *authHandler) Logout(ctx context.Context, _ *connect.Request[leadifyv1.LogoutRequest]) (*connect.Response[leadifyv1.LogoutResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&leadifyv1.LogoutResponse{}), toConnect(ctx, h.log, h.auth.Logout(ctx, a))
}

func (h *authHandler) Me(ctx context.Context, _ *connect.Request[leadifyv1.MeRequest]) (*connect.Response[leadifyv1.MeResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	user, err := queries.New().GetUser(ctx, h.pool, a.UserID)
	if err != nil {
		return nil, toConnect(ctx, h.log, postgres.Translate(err))
	}
	resp := &leadifyv1.MeResponse{User: userPB(user)}
	for _, m := range a.Memberships {
		resp.Memberships = append(resp.Memberships, membershipPB(m))
	}
	return connect.NewResponse(resp), nil
}

func (h *authHandler) ChangePassword(ctx context.Context, req *connect.Request[leadifyv1.ChangePasswordRequest]) (*connect.Response[leadifyv1.ChangePasswordResponse], error) {
	a, err := actorOf(ctx)
	if err != nil {
		return nil, err
	}
	err = h.auth.ChangePassword(ctx, a, req.Msg.CurrentPassword, req.Msg.NewPassword)
	return connect.NewResponse(&leadifyv1.ChangePasswordResponse{}), toConnect(ctx, h.log, err)
}

var errInvitationUsed = errors.New("this invitation has expired or was already used")

func (h *authHandler) AcceptInvitation(ctx context.Context, req *connect.Request[leadifyv1.AcceptInvitationRequest]) (*connect.Response[leadifyv1.AcceptInvitationResponse], error) {
	m := req.Msg
	q := queries.New()
	inv, err := q.InvitationByToken(ctx, h.pool, auth.HashToken(m.Token))
	if err != nil {
		return nil, toConnect(ctx, h.log, postgres.Translate(err))
	}
	if inv.Accepted || !inv.ExpiresAt.After(time.Now()) {
		return nil, toConnect(ctx, h.log, &failed{msg: errInvitationUsed.Error()})
	}
	user, err := q.GetUserByEmail(ctx, h.pool, inv.Email)
	existing := err == nil
	switch {
	case existing:
		ok, err := auth.CheckPassword(m.Password, user.PasswordHash)
		if err != nil {
			return nil, toConnect(ctx, h.log, err)
		}
		if !ok {
			return nil, toConnect(ctx, h.log, auth.ErrBadCredentials)
		}
	case errors.Is(postgres.Translate(err), postgres.ErrNotFound):
		if strings.TrimSpace(m.FullName) == "" {
			return nil, toConnect(ctx, h.log, invalidf("full_name: required for a new account"))
		}
	default:
		return nil, toConnect(ctx, h.log, err)
	}

	var sess auth.Session
	err = postgres.InTx(ctx, h.pool, postgres.StoreScope(inv.StoreID), func(tx *postgres.Tx) error {
		if n, err := tx.Q.MarkInvitationAccepted(ctx, tx, inv.ID); err != nil || n == 0 {
			if err == nil {
				err = &failed{msg: errInvitationUsed.Error()}
			}
			return err
		}
		if !existing {
			hash, err := auth.HashPassword(m.Password)
			if err != nil {
				return err
			}
			user, err = tx.Q.CreateUser(ctx, tx, queries.CreateUserParams{ID: uuid.Must(uuid.NewV7()), Email: inv.Email,
				FullName: strings.TrimSpace(m.FullName), PasswordHash: hash})
			if err != nil {
				return postgres.Translate(err)
			}
		}
		if _, err := tx.Q.UpsertMember(ctx, tx, queries.UpsertMemberParams{StoreID: inv.StoreID, UserID: user.ID, Role: inv.Role}); err != nil {
			return err
		}
		// A membership's epoch never repeats, across a removal and re-join
		// too: a replica that slept through both still holds a cursor with
		// an old epoch, which must not match the new membership's (it would
		// keep a view the new one does not have). The time in microseconds is
		// above every epoch before (each bump is one, and takes longer).
		if _, err := tx.Exec(ctx, `UPDATE store_members SET epoch = greatest(epoch + 1, (extract(epoch from clock_timestamp()) * 1000000)::bigint)
WHERE store_id = $1 AND user_id = $2`, inv.StoreID, user.ID); err != nil {
			return fmt.Errorf("new membership epoch: %w", err)
		}
		if err := audit.Write(ctx, tx, audit.Entry{Actor: user.ID, Store: inv.StoreID, Action: "member.joined",
			TargetType: "user", TargetID: user.ID.String(), Summary: map[string]any{"role": inv.Role, "invitation": inv.ID}}); err != nil {
			return err
		}
		sess, err = h.auth.IssueSession(ctx, tx, user, "invitation", clientIP(req.Peer()))
		return err
	})
	if err != nil {
		return nil, toConnect(ctx, h.log, err)
	}
	return connect.NewResponse(&leadifyv1.AcceptInvitationResponse{Session: sessionPB(sess)}), nil
}
