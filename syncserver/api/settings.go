package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	leadifyv1 "github.com/leadify/leadify/proto/gen/leadify/v1"
	"github.com/leadify/leadify/syncserver/postgres/queries"
)

const maxLogoBytes = 512 << 10

var (
	colorRE   = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	iceRE     = regexp.MustCompile(`^[0-9]{15}$`)
	carriers  = []string{"", "coliix", "ameex", "sendit"}
	maskNames = []string{"name", "branding", "default_carrier", "auto_create_parcels", "lead_lease_minutes", "invoice", "timezone"}
)

// defaultSettings are a new store's settings before the caller's are applied.
func defaultSettings() *leadifyv1.StoreSettings {
	return &leadifyv1.StoreSettings{
		Branding:         &leadifyv1.Branding{PrimaryColor: "#0f766e", AccentColor: "#f59e0b"},
		LeadLeaseMinutes: 24 * 60,
		Invoice:          &leadifyv1.InvoiceDetails{VatRateBp: 2000},
		Currency:         "MAD",
		Timezone:         "Africa/Casablanca",
	}
}

// applySettings copies the masked fields of in onto out.
func applySettings(out, in *leadifyv1.StoreSettings, mask []string) error {
	if in == nil {
		return invalidf("settings: required")
	}
	for _, f := range mask {
		switch f {
		case "name":
			out.Name = strings.TrimSpace(in.Name)
		case "branding":
			out.Branding = in.Branding
		case "default_carrier":
			out.DefaultCarrier = in.DefaultCarrier
		case "auto_create_parcels":
			out.AutoCreateParcels = in.AutoCreateParcels
		case "lead_lease_minutes":
			out.LeadLeaseMinutes = in.LeadLeaseMinutes
		case "invoice":
			out.Invoice = in.Invoice
		case "timezone":
			out.Timezone = in.Timezone
		default:
			return invalidf("update_mask: unknown field %q (known: %s)", f, strings.Join(maskNames, ", "))
		}
	}
	return validateSettings(out)
}

func validateSettings(s *leadifyv1.StoreSettings) error {
	if n := utf8.RuneCountInString(s.Name); n == 0 || n > 100 {
		return invalidf("name: must be 1 to 100 characters")
	}
	if s.Branding == nil {
		s.Branding = &leadifyv1.Branding{}
	}
	b := s.Branding
	for field, c := range map[string]string{"primary_color": b.PrimaryColor, "accent_color": b.AccentColor} {
		if c != "" && !colorRE.MatchString(c) {
			return invalidf("branding.%s: %q is not a #rrggbb colour", field, c)
		}
	}
	if len(b.Logo) > maxLogoBytes {
		return invalidf("branding.logo: %d KiB is over the 512 KiB limit", len(b.Logo)>>10)
	}
	if len(b.Logo) > 0 {
		mime := http.DetectContentType(b.Logo)
		if mime != "image/png" && mime != "image/jpeg" {
			return invalidf("branding.logo: must be a PNG or JPEG image, got %s", mime)
		}
		b.LogoMimeType = mime
	} else {
		b.LogoMimeType = ""
	}
	if !slices.Contains(carriers, s.DefaultCarrier) {
		return invalidf("default_carrier: %q is not one of coliix, ameex, sendit", s.DefaultCarrier)
	}
	if s.LeadLeaseMinutes < 5 || s.LeadLeaseMinutes > 7*24*60 {
		return invalidf("lead_lease_minutes: must be between 5 minutes and 7 days")
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "" {
		return invalidf("timezone: %q is not a known time zone", s.Timezone)
	}
	if s.Invoice == nil {
		s.Invoice = &leadifyv1.InvoiceDetails{}
	}
	if inv := s.Invoice; inv.VatRateBp < 0 || inv.VatRateBp > 10000 {
		return invalidf("invoice.vat_rate_bp: must be between 0 and 10000")
	}
	if ice := s.Invoice.Ice; ice != "" && !iceRE.MatchString(ice) {
		return invalidf("invoice.ice: must be 15 digits")
	}
	s.Currency = "MAD"
	return nil
}

func createStoreParams(s *leadifyv1.StoreSettings) (queries.CreateStoreParams, error) {
	inv, err := protojson.Marshal(s.Invoice)
	if err != nil {
		return queries.CreateStoreParams{}, err
	}
	b := s.Branding
	return queries.CreateStoreParams{Name: s.Name, Logo: b.Logo, LogoMimeType: b.LogoMimeType,
		PrimaryColor: b.PrimaryColor, AccentColor: b.AccentColor, DefaultCarrier: s.DefaultCarrier,
		AutoCreateParcels: s.AutoCreateParcels, LeadLeaseMinutes: s.LeadLeaseMinutes, Invoice: inv,
		Currency: s.Currency, Timezone: s.Timezone}, nil
}
