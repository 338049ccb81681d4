package auth

import (
	"fmt"
	"slices"
)

// Permission is one granular right inside a store.
type Permission string

// The permissions. Roles grant a default set; a member's set can be widened
// (granted) or narrowed (revoked) individually.
const (
	StoreView     Permission = "store.view"
	StoreSettings Permission = "store.settings"
	StoreMembers  Permission = "store.members"
	StoreAudit    Permission = "store.audit"

	LeadsViewPool Permission = "leads.view_pool"
	LeadsViewAll  Permission = "leads.view_all"
	LeadsClaim    Permission = "leads.claim"
	LeadsCall     Permission = "leads.call"
	LeadsConfirm  Permission = "leads.confirm"
	LeadsCancel   Permission = "leads.cancel"
	LeadsEdit     Permission = "leads.edit"
	LeadsAssign   Permission = "leads.assign"
	LeadsImport   Permission = "leads.import"
	LeadsExport   Permission = "leads.export"
	LeadsBulk     Permission = "leads.bulk"

	ParcelsView   Permission = "parcels.view"
	ParcelsCreate Permission = "parcels.create"
	ParcelsCancel Permission = "parcels.cancel"

	CarriersManage     Permission = "carriers.manage"
	IntegrationsManage Permission = "integrations.manage"

	BillingView        Permission = "billing.view"
	BillingManage      Permission = "billing.manage"
	CommissionsViewOwn Permission = "commissions.view_own"
	CommissionsViewAll Permission = "commissions.view_all"
	CommissionsManage  Permission = "commissions.manage"
)

// AllPermissions lists every permission, in display order.
var AllPermissions = []Permission{
	StoreView, StoreSettings, StoreMembers, StoreAudit,
	LeadsViewPool, LeadsViewAll, LeadsClaim, LeadsCall, LeadsConfirm, LeadsCancel, LeadsEdit,
	LeadsAssign, LeadsImport, LeadsExport, LeadsBulk,
	ParcelsView, ParcelsCreate, ParcelsCancel,
	CarriersManage, IntegrationsManage,
	BillingView, BillingManage, CommissionsViewOwn, CommissionsViewAll, CommissionsManage,
}

// Role is a member's role in a store.
type Role string

// The roles. Platform admins are not members: they see every store.
const (
	RoleAdmin  Role = "admin"
	RoleSeller Role = "seller"
	RoleAgent  Role = "agent"
)

// ParseRole returns an error for anything but the three roles.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAdmin, RoleSeller, RoleAgent:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q", s)
}

var agentDefaults = []Permission{
	StoreView, LeadsViewPool, LeadsClaim, LeadsCall, LeadsConfirm, LeadsCancel, LeadsEdit,
	ParcelsView, CommissionsViewOwn,
}

// DefaultPermissions is what a role grants before per-member changes.
func DefaultPermissions(r Role) []Permission {
	switch r {
	case RoleAdmin:
		return slices.Clone(AllPermissions)
	case RoleSeller:
		return slices.DeleteFunc(slices.Clone(AllPermissions), func(p Permission) bool { return p == CommissionsViewOwn })
	case RoleAgent:
		return slices.Clone(agentDefaults)
	}
	return nil
}

// ParsePermissions checks that every name is a known permission.
func ParsePermissions(names []string) ([]Permission, error) {
	out := make([]Permission, 0, len(names))
	for _, n := range names {
		p := Permission(n)
		if !slices.Contains(AllPermissions, p) {
			return nil, fmt.Errorf("unknown permission %q", n)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// Effective is the role's defaults plus granted minus revoked, in display order.
func Effective(r Role, granted, revoked []string) []Permission {
	base := DefaultPermissions(r)
	var out []Permission
	for _, p := range AllPermissions {
		has := slices.Contains(base, p) || slices.Contains(granted, string(p))
		if has && !slices.Contains(revoked, string(p)) {
			out = append(out, p)
		}
	}
	return out
}
