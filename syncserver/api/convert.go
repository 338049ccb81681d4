package api

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/auth"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, invalidf("%s: %q is not a valid id", field, s)
	}
	return id, nil
}

func userPB(u queries.User) *leadifyv1.User {
	return &leadifyv1.User{Id: u.ID.String(), Email: u.Email, FullName: u.FullName,
		PlatformAdmin: u.PlatformAdmin, CreatedAt: timestamppb.New(u.CreatedAt)}
}

var roleToPB = map[auth.Role]leadifyv1.Role{
	auth.RoleAdmin: leadifyv1.Role_ROLE_ADMIN, auth.RoleSeller: leadifyv1.Role_ROLE_SELLER, auth.RoleAgent: leadifyv1.Role_ROLE_AGENT,
}

func roleFromPB(r leadifyv1.Role) (auth.Role, error) {
	for k, v := range roleToPB {
		if v == r {
			return k, nil
		}
	}
	return "", invalidf("role: must be ROLE_ADMIN, ROLE_SELLER or ROLE_AGENT")
}

func permStrings(ps []auth.Permission) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func membershipPB(m auth.Membership) *leadifyv1.Membership {
	return &leadifyv1.Membership{StoreId: m.StoreID.String(), StoreName: m.StoreName, SellerId: m.SellerID.String(),
		Role: roleToPB[m.Role], Permissions: permStrings(m.Permissions)}
}

func sellerPB(s queries.Seller) *leadifyv1.Seller {
	return &leadifyv1.Seller{Id: s.ID.String(), Name: s.Name, OwnerUserId: s.OwnerUserID.String(),
		CreatedAt: timestamppb.New(s.CreatedAt)}
}

func storePB(s queries.Store) (*leadifyv1.Store, error) {
	inv := &leadifyv1.InvoiceDetails{}
	if len(s.Invoice) > 0 {
		if err := protojson.Unmarshal(s.Invoice, inv); err != nil {
			return nil, fmt.Errorf("store %v invoice details: %w", s.ID, err)
		}
	}
	return &leadifyv1.Store{
		Id: s.ID.String(), SellerId: s.SellerID.String(),
		Settings: &leadifyv1.StoreSettings{
			Name: s.Name,
			Branding: &leadifyv1.Branding{Logo: s.Logo, LogoMimeType: s.LogoMimeType,
				PrimaryColor: s.PrimaryColor, AccentColor: s.AccentColor},
			DefaultCarrier: s.DefaultCarrier, AutoCreateParcels: s.AutoCreateParcels,
			LeadLeaseMinutes: s.LeadLeaseMinutes, Invoice: inv, Currency: s.Currency, Timezone: s.Timezone,
		},
		CreatedAt: timestamppb.New(s.CreatedAt), UpdatedAt: timestamppb.New(s.UpdatedAt),
	}, nil
}

func storesPB(rows []queries.Store) ([]*leadifyv1.Store, error) {
	out := make([]*leadifyv1.Store, 0, len(rows))
	for _, r := range rows {
		s, err := storePB(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func memberPB(m queries.GetMemberRow) *leadifyv1.Member {
	role, _ := auth.ParseRole(m.Role)
	return &leadifyv1.Member{UserId: m.UserID.String(), Email: m.Email, FullName: m.FullName, Role: roleToPB[role],
		Granted: m.Granted, Revoked: m.Revoked, Permissions: permStrings(auth.Effective(role, m.Granted, m.Revoked)),
		AddedAt: timestamppb.New(m.AddedAt)}
}
