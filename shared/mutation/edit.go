package mutation

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/leadify/leadify/shared/city"
	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/phone"
)

// EditLead edits fields of the lead as compare-and-set (see [Edits]). Edits
// of different fields merge: two agents editing different fields both
// succeed. Giving a wrong_number lead a different phone number moves it back
// to new, so that it is called again. It needs "leads.edit".
//
// Besides the checks every mutation makes (see [Mutation]), it is rejected
// with CodeInvalid for an empty edit set or a malformed value; CodeTransition
// when the lead is cancelled; CodeStale when a field no longer holds the old
// value of its edit; and CodeInvalid when a new phone cannot be read as a
// valid number or a new city is not in the catalogue.
type EditLead struct {
	Lead    uuid.UUID `json:"lead_id"`
	EventID uuid.UUID `json:"event_id"`
	Edits   Edits     `json:"edits"`
}

func (EditLead) Name() string        { return "EditLead" }
func (EditLead) Version() int        { return 1 }
func (m EditLead) LeadID() uuid.UUID { return m.Lead }

func (m EditLead) validate() error {
	if err := checkIDs(m.Lead, m.EventID); err != nil {
		return err
	}
	if m.Edits == (Edits{}) {
		return errors.New("no field is edited")
	}
	return m.Edits.validate()
}

// Apply implements [Mutation].
func (m EditLead) Apply(env Env, cur *Lead) (Result, *Rejection) {
	c, rej := begin(env, cur, m, permEdit)
	if rej != nil {
		return Result{}, rej
	}
	if c.lead.Status.IsTerminal() {
		return Result{}, statusRejection(c.lead.Status, "it cannot be edited")
	}
	if rej := m.Edits.apply(c); rej != nil {
		return Result{}, rej
	}
	return c.finish(m.EventID, EventEdit, "")
}

// Change is a compare-and-set edit of one field: it applies only while the
// field holds Old, and sets it to New.
type Change[T any] struct {
	Old T `json:"old"`
	New T `json:"new"`
}

// Edits are the field edits of [EditLead] and [ConfirmLead]; a nil field is
// not edited. Phone and City are raw text as typed: the phone is compared
// with the lead's PhoneRaw and read with shared/phone, the city compared with
// CityRaw and resolved with shared/city.
//
// An edit applies when the field holds its Old value, and also, as a no-op,
// when it already holds its New value (someone made the same change). Any
// other value makes the whole mutation stale; the reason names every such
// field and its value now. An edit whose Old equals its New, a new value over
// its length limit or with control characters, a malformed item or a
// negative amount is invalid.
type Edits struct {
	CustomerName *Change[string]       `json:"customer_name,omitempty"`
	Phone        *Change[string]       `json:"phone,omitempty"`
	City         *Change[string]       `json:"city,omitempty"`
	Address      *Change[string]       `json:"address,omitempty"`
	Items        *Change[[]Item]       `json:"items,omitempty"`
	COD          *Change[money.Amount] `json:"cod,omitempty"`
}

func (e Edits) validate() error {
	if ch := e.CustomerName; ch != nil {
		if err := checkChange("customer name", ch, checkLine("customer name", ch.New, maxName)); err != nil {
			return err
		}
	}
	if ch := e.Phone; ch != nil {
		if err := checkChange("phone", ch, checkLine("phone", ch.New, maxPhone)); err != nil {
			return err
		}
	}
	if ch := e.City; ch != nil {
		if err := checkChange("city", ch, checkLine("city", ch.New, maxCity)); err != nil {
			return err
		}
	}
	if ch := e.Address; ch != nil {
		if err := checkChange("address", ch, checkMultiline("address", ch.New, maxAddress)); err != nil {
			return err
		}
	}
	if ch := e.Items; ch != nil {
		if slices.Equal(ch.Old, ch.New) {
			return errors.New("items edit does not change them")
		}
		if err := checkItems(ch.New); err != nil {
			return err
		}
	}
	if ch := e.COD; ch != nil {
		var err error
		if ch.New < 0 {
			err = errors.New("cash-on-delivery amount is negative")
		}
		if err := checkChange("cash-on-delivery amount", ch, err); err != nil {
			return err
		}
	}
	return nil
}

// checkChange returns err, or an error if ch does not change its field.
func checkChange[T comparable](label string, ch *Change[T], err error) error {
	if err != nil {
		return err
	}
	if ch.Old == ch.New {
		return fmt.Errorf("%s edit does not change it", label)
	}
	return nil
}

// apply checks every edit against the lead, then applies them to c, with
// each changed field's old and new value in the event's data. It rejects with
// CodeStale when a field holds neither the edit's old nor its new value, and
// with CodeInvalid for a phone or city that cannot be read.
func (e Edits) apply(c *change) *Rejection {
	l := &c.lead
	var stale []string
	stale = appendStale(stale, "Customer name is", e.CustomerName, l.CustomerName, same, quote)
	stale = appendStale(stale, "Phone is", e.Phone, l.PhoneRaw, same, quote)
	stale = appendStale(stale, "City is", e.City, l.CityRaw, same, quote)
	stale = appendStale(stale, "Address is", e.Address, l.Address, same, quote)
	stale = appendStale(stale, "Items are", e.Items, l.Items, slices.Equal, describeItems)
	stale = appendStale(stale, "Cash-on-delivery amount is", e.COD, l.COD, same, money.Amount.Format)
	if len(stale) > 0 {
		reason := strings.Join(stale, "; ") + " (changed since you edited it"
		if !c.was.UpdatedAt.IsZero() {
			reason += "; lead last updated " + formatTime(c.was.UpdatedAt)
		}
		return reject(CodeStale, "%s)", reason)
	}

	if ch := e.Phone; ch != nil && ch.New != l.PhoneRaw {
		n, err := phone.Parse(ch.New)
		if err != nil {
			return reject(CodeInvalid, "Phone %q is not a valid phone number", ch.New)
		}
		c.record("phone", l.PhoneRaw, ch.New)
		renumbered := n.E164 != l.PhoneE164
		l.PhoneRaw, l.PhoneE164 = ch.New, n.E164
		if renumbered && l.Status == lead.StatusWrongNumber {
			if rej := c.move(lead.StatusNew, "its phone cannot be changed"); rej != nil {
				return rej
			}
		}
	}
	if ch := e.City; ch != nil && ch.New != l.CityRaw {
		ct, err := city.Resolve(ch.New)
		if err != nil {
			return reject(CodeInvalid, "%s", capitalize(err.Error()))
		}
		c.record("city", l.CityRaw, ch.New)
		c.data["city_id"] = ct.ID
		l.CityRaw, l.CityID = ch.New, ct.ID
	}
	if ch := e.CustomerName; ch != nil && ch.New != l.CustomerName {
		c.record("customer_name", l.CustomerName, ch.New)
		l.CustomerName = ch.New
	}
	if ch := e.Address; ch != nil && ch.New != l.Address {
		c.record("address", l.Address, ch.New)
		l.Address = ch.New
	}
	if ch := e.Items; ch != nil && !slices.Equal(ch.New, l.Items) {
		c.record("items", itemsJSON(l.Items), itemsJSON(ch.New))
		l.Items = slices.Clone(ch.New)
	}
	if ch := e.COD; ch != nil && ch.New != l.COD {
		c.record("cod", l.COD.Plain(), ch.New.Plain())
		l.COD = ch.New
	}
	return nil
}

// appendStale appends "<subject> now <value>" ("Phone is now "0612…"") to
// stale if ch edits a field whose value now is neither ch.Old nor ch.New.
func appendStale[T any](stale []string, subject string, ch *Change[T], now T, eq func(a, b T) bool, show func(T) string) []string {
	if ch == nil || eq(ch.Old, now) || eq(ch.New, now) {
		return stale
	}
	return append(stale, subject+" now "+show(now))
}

// record notes a field's change in the event's data: key → new value and
// key_old → old value.
func (c *change) record(key, old, new string) {
	c.data[key] = new
	c.data[key+"_old"] = old
}

func same[T comparable](a, b T) bool { return a == b }

// quote shows a text value in a reason.
func quote(s string) string {
	if s == "" {
		return "empty"
	}
	return fmt.Sprintf("%q", s)
}

// describeItems shows items in a reason: "2 × Argan oil, 1 × Soap".
func describeItems(items []Item) string {
	if len(items) == 0 {
		return "empty"
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("%d × %s", it.Qty, it.Name)
	}
	return strings.Join(parts, ", ")
}

// itemsJSON is the items as the event's data holds them.
func itemsJSON(items []Item) string {
	if items == nil {
		items = []Item{}
	}
	b, _ := json.Marshal(items) // an []Item always marshals
	return string(b)
}
