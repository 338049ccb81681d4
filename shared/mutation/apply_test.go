package mutation_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/leadify/leadify/shared/lead"
	"github.com/leadify/leadify/shared/money"
	"github.com/leadify/leadify/shared/mutation"
)

// withField returns a copy of m with its field name set to v.
func withField(m mutation.Mutation, name string, v any) mutation.Mutation {
	c := reflect.New(reflect.TypeOf(m)).Elem()
	c.Set(reflect.ValueOf(m))
	c.FieldByName(name).Set(reflect.ValueOf(v))
	return c.Interface().(mutation.Mutation)
}

// TestWhoMayAct runs the checks every mutation shares, on every mutation.
func TestWhoMayAct(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.m.Name(), func(t *testing.T) {
			holder := env(saraID, mutation.RoleAgent, s.perm) // only the permission it needs
			releases := s.m.Name() == "ReleaseLead"
			assigns := s.m.Name() == "AssignLead"

			t.Run("holder", func(t *testing.T) {
				res := requireApplied(t, holder, s.lead(), s.m)
				if !releases && !assigns {
					require.Equal(t, now.Add(lease), res.Lead.LeaseUntil, "lease renewed")
					require.Equal(t, saraID, res.Lead.AssignedTo)
				}
			})
			t.Run("holder with lapsed lease", func(t *testing.T) {
				cur := s.lead()
				leaseLapsed(cur)
				res := requireApplied(t, holder, cur, s.m)
				if !releases && !assigns {
					require.Equal(t, now.Add(lease), res.Lead.LeaseUntil, "lease renewed")
				}
			})
			t.Run("holder without lease length", func(t *testing.T) {
				e := holder
				e.Lease = 0
				cur := s.lead()
				res := requireApplied(t, e, cur, s.m)
				if !releases && !assigns {
					require.Equal(t, cur.LeaseUntil, res.Lead.LeaseUntil, "lease untouched")
				}
			})
			for _, e := range []mutation.Env{seller(), admin()} {
				t.Run(string(e.Actor.Role)+" on another agent's lead", func(t *testing.T) {
					cur := s.lead()
					heldBy(karimID)(cur)
					res := requireApplied(t, e, cur, s.m)
					if !releases && !assigns {
						require.Equal(t, karimID, res.Lead.AssignedTo)
						require.Equal(t, cur.LeaseUntil, res.Lead.LeaseUntil, "not the holder: no renewal")
					}
				})
			}
			t.Run("seller on a pool lead", func(t *testing.T) {
				cur := s.lead()
				inPool(cur)
				if releases {
					requireRejected(t, seller(), cur, s.m, mutation.CodeNotHolder, "Lead is already in the pool")
					return
				}
				res := requireApplied(t, seller(), cur, s.m)
				if !assigns {
					require.Equal(t, uuid.Nil, res.Lead.AssignedTo)
					require.True(t, res.Lead.LeaseUntil.IsZero())
				}
			})
			t.Run("nil lead", func(t *testing.T) {
				requireRejected(t, holder, nil, s.m, mutation.CodeNotFound, "Lead not found")
			})
			t.Run("another lead", func(t *testing.T) {
				cur := s.lead()
				cur.ID = otherID
				requireRejected(t, holder, cur, s.m, mutation.CodeNotFound, "Lead not found")
			})
			t.Run("deleted before forbidden", func(t *testing.T) {
				requireRejected(t, without(holder, s.perm), leadWith(deleted), s.m, mutation.CodeNotFound, "Lead was deleted")
			})
			t.Run("forbidden before not holder", func(t *testing.T) {
				e := without(karim(), s.perm)
				requireRejected(t, e, s.lead(), s.m, mutation.CodeForbidden, "")
			})
			t.Run("forbidden for seller", func(t *testing.T) {
				requireRejected(t, without(seller(), s.perm), s.lead(), s.m, mutation.CodeForbidden, "")
			})
			t.Run("other agent", func(t *testing.T) {
				e := env(karimID, mutation.RoleAgent, s.perm)
				requireRejected(t, e, s.lead(), s.m, mutation.CodeNotHolder, "Lead was claimed by Sara")
				e.Names = nil
				requireRejected(t, e, s.lead(), s.m, mutation.CodeNotHolder, "Lead was claimed by another agent")
			})
			t.Run("agent on a pool lead", func(t *testing.T) {
				cur := s.lead()
				inPool(cur)
				requireRejected(t, holder, cur, s.m, mutation.CodeNotHolder, "Lead is back in the pool")
			})
			t.Run("unknown role must hold", func(t *testing.T) {
				e := env(karimID, "", s.perm)
				requireRejected(t, e, s.lead(), s.m, mutation.CodeNotHolder, "")
			})
			t.Run("nil user holds nothing", func(t *testing.T) {
				e := env(uuid.Nil, mutation.RoleAgent, s.perm)
				cur := s.lead()
				inPool(cur)
				requireRejected(t, e, cur, s.m, mutation.CodeNotHolder, "")
			})
			t.Run("not holder before invalid", func(t *testing.T) {
				m := withField(s.m, "EventID", uuid.Nil)
				requireRejected(t, env(karimID, mutation.RoleAgent, s.perm), s.lead(), m, mutation.CodeNotHolder, "")
			})
			t.Run("missing event id", func(t *testing.T) {
				m := withField(s.m, "EventID", uuid.Nil)
				requireRejected(t, holder, s.lead(), m, mutation.CodeInvalid, "Event id is missing")
			})
		})
	}
}

func TestForbiddenReasons(t *testing.T) {
	want := map[string]string{
		"leads.call":    "You are not allowed to record calls and notes on leads in this store",
		"leads.confirm": "You are not allowed to confirm leads in this store",
		"leads.cancel":  "You are not allowed to cancel leads in this store",
		"leads.edit":    "You are not allowed to edit leads in this store",
		"leads.claim":   "You are not allowed to claim or release leads in this store",
		"leads.assign":  "You are not allowed to assign leads in this store",
	}
	for _, s := range samples() {
		requireRejected(t, without(sara(), s.perm), s.lead(), s.m, mutation.CodeForbidden, want[s.perm])
	}
}

// mutationCase is one case of a mutation's own table.
type mutationCase struct {
	name   string
	env    mutation.Env // sara() when zero
	lead   *mutation.Lead
	m      mutation.Mutation
	code   mutation.Code // empty when the mutation applies
	reason string        // checked when not empty
	check  func(t *testing.T, cur *mutation.Lead, res mutation.Result)
}

func runCases(t *testing.T, cases []mutationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env
			if e.Actor.UserID == uuid.Nil {
				e = sara()
			}
			if tc.code != "" {
				requireRejected(t, e, tc.lead, tc.m, tc.code, tc.reason)
				return
			}
			res := requireApplied(t, e, tc.lead, tc.m)
			if tc.check != nil {
				tc.check(t, tc.lead, res)
			}
		})
	}
}

func TestRecordCall(t *testing.T) {
	call := func(o lead.Outcome, at time.Time) mutation.RecordCall {
		return mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: o, Note: "note", CallbackAt: at}
	}
	casablanca := time.FixedZone("+01", 3600)
	later := now.Add(3 * time.Hour).In(casablanca)
	runCases(t, []mutationCase{{
		name: "no answer",
		lead: baseLead(),
		m:    call(lead.OutcomeNoAnswer, time.Time{}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusNoAnswer, res.Lead.Status)
			require.Equal(t, cur.CallAttempts+1, res.Lead.CallAttempts)
			require.Equal(t, []mutation.LeadEvent{{
				ID: eventID, StoreID: storeID, LeadID: leadID, CreatedAt: now, ActorID: saraID,
				Kind: mutation.EventCall, FromStatus: lead.StatusNew, ToStatus: lead.StatusNoAnswer,
				Note: "note", Data: map[string]string{"outcome": "no_answer"},
			}}, res.Events)
		},
	}, {
		name: "no answer again keeps the status",
		lead: leadWith(status(lead.StatusNoAnswer)),
		m:    call(lead.OutcomeNoAnswer, time.Time{}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusNoAnswer, res.Lead.Status)
			require.Equal(t, int32(2), res.Lead.CallAttempts)
		},
	}, {
		name: "callback",
		lead: baseLead(),
		m:    call(lead.OutcomeCallback, later),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusCallback, res.Lead.Status)
			require.Equal(t, later.UTC(), res.Lead.CallbackAt, "stored in UTC")
			require.Equal(t, "2025-06-01T13:00:00Z", res.Events[0].Data["callback_at"])
		},
	}, {
		name: "callback moved",
		lead: leadWith(status(lead.StatusCallback), func(l *mutation.Lead) { l.CallbackAt = now.Add(time.Hour) }),
		m:    call(lead.OutcomeCallback, now.Add(48*time.Hour)),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, now.Add(48*time.Hour), res.Lead.CallbackAt)
		},
	}, {
		name: "another outcome clears the callback",
		lead: leadWith(status(lead.StatusCallback), func(l *mutation.Lead) { l.CallbackAt = now.Add(time.Hour) }),
		m:    call(lead.OutcomeUnreachable, time.Time{}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusUnreachable, res.Lead.Status)
			require.True(t, res.Lead.CallbackAt.IsZero())
		},
	}, {
		name: "wrong number",
		lead: baseLead(),
		m:    call(lead.OutcomeWrongNumber, time.Time{}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusWrongNumber, res.Lead.Status)
		},
	}, {
		name: "note at the limit",
		lead: baseLead(),
		m:    mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeNoAnswer, Note: strings.Repeat("é", 2000)},
	}, {
		name:   "callback without a time",
		lead:   baseLead(),
		m:      call(lead.OutcomeCallback, time.Time{}),
		code:   mutation.CodeInvalid,
		reason: "A callback needs a time",
	}, {
		name:   "callback now",
		lead:   baseLead(),
		m:      call(lead.OutcomeCallback, now),
		code:   mutation.CodeInvalid,
		reason: "Callback time 2025-06-01 10:00 UTC is not in the future",
	}, {
		name: "callback in the past",
		lead: baseLead(),
		m:    call(lead.OutcomeCallback, now.Add(-time.Minute)),
		code: mutation.CodeInvalid,
	}, {
		name:   "callback time with another outcome",
		lead:   baseLead(),
		m:      call(lead.OutcomeNoAnswer, later),
		code:   mutation.CodeInvalid,
		reason: "A callback time is only for the callback outcome",
	}, {
		name:   "no outcome",
		lead:   baseLead(),
		m:      call(0, time.Time{}),
		code:   mutation.CodeInvalid,
		reason: "Call outcome is missing",
	}, {
		name:   "note too long",
		lead:   baseLead(),
		m:      mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeNoAnswer, Note: strings.Repeat("é", 2001)},
		code:   mutation.CodeInvalid,
		reason: "Note is longer than 2000 characters",
	}, {
		name:   "note with a NUL",
		lead:   baseLead(),
		m:      mutation.RecordCall{Lead: leadID, EventID: eventID, Outcome: lead.OutcomeNoAnswer, Note: "a\x00b"},
		code:   mutation.CodeInvalid,
		reason: "Note contains a control character",
	}, {
		name:   "confirmed lead",
		lead:   leadWith(status(lead.StatusConfirmed)),
		m:      call(lead.OutcomeNoAnswer, time.Time{}),
		code:   mutation.CodeTransition,
		reason: "Lead is already confirmed; a call cannot be recorded on it",
	}, {
		name:   "cancelled lead",
		lead:   leadWith(status(lead.StatusCancelled)),
		m:      call(lead.OutcomeCallback, later),
		code:   mutation.CodeTransition,
		reason: "Lead is already cancelled; a call cannot be recorded on it",
	}, {
		name:   "wrong number again",
		lead:   leadWith(status(lead.StatusWrongNumber)),
		m:      call(lead.OutcomeWrongNumber, time.Time{}),
		code:   mutation.CodeTransition,
		reason: "Lead is already marked wrong number",
	}})
}

func TestConfirmLead(t *testing.T) {
	confirm := mutation.ConfirmLead{Lead: leadID, EventID: eventID}
	withEdits := func(e mutation.Edits) mutation.ConfirmLead {
		m := confirm
		m.Edits = e
		return m
	}
	runCases(t, []mutationCase{{
		name: "confirm",
		lead: baseLead(),
		m:    confirm,
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusConfirmed, res.Lead.Status)
			ev := res.Events[0]
			require.Equal(t, mutation.EventConfirm, ev.Kind)
			require.Equal(t, lead.StatusNew, ev.FromStatus)
			require.Equal(t, lead.StatusConfirmed, ev.ToStatus)
			require.Nil(t, ev.Data)
		},
	}, {
		name: "from callback clears the callback time",
		lead: leadWith(status(lead.StatusCallback), func(l *mutation.Lead) { l.CallbackAt = now.Add(time.Hour) }),
		m:    confirm,
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.True(t, res.Lead.CallbackAt.IsZero())
		},
	}, {
		name: "with edits",
		lead: baseLead(),
		m: withEdits(mutation.Edits{
			Phone: &mutation.Change[string]{Old: "0612345678", New: "06 98 76 54 32"},
			COD:   &mutation.Change[money.Amount]{Old: 240 * money.Dirham, New: 260 * money.Dirham},
		}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusConfirmed, res.Lead.Status)
			require.Equal(t, "06 98 76 54 32", res.Lead.PhoneRaw)
			require.Equal(t, "+212698765432", res.Lead.PhoneE164)
			require.Equal(t, 260*money.Dirham, res.Lead.COD)
			require.Equal(t, map[string]string{
				"phone": "06 98 76 54 32", "phone_old": "0612345678",
				"cod": "260.00", "cod_old": "240.00",
			}, res.Events[0].Data)
		},
	}, {
		name:   "no items",
		lead:   leadWith(func(l *mutation.Lead) { l.Items = nil }),
		m:      confirm,
		code:   mutation.CodeInvalid,
		reason: "Add at least one item before confirming the lead",
	}, {
		name:   "items edited away",
		lead:   baseLead(),
		m:      withEdits(mutation.Edits{Items: &mutation.Change[[]mutation.Item]{Old: baseLead().Items, New: []mutation.Item{}}}),
		code:   mutation.CodeInvalid,
		reason: "Add at least one item before confirming the lead",
	}, {
		name:   "no amount",
		lead:   leadWith(func(l *mutation.Lead) { l.COD = 0 }),
		m:      confirm,
		code:   mutation.CodeInvalid,
		reason: "Set a cash-on-delivery amount above 0 before confirming the lead",
	}, {
		name:   "already confirmed",
		lead:   leadWith(status(lead.StatusConfirmed)),
		m:      confirm,
		code:   mutation.CodeTransition,
		reason: "Lead is already confirmed",
	}, {
		name:   "cancelled",
		lead:   leadWith(status(lead.StatusCancelled)),
		m:      confirm,
		code:   mutation.CodeTransition,
		reason: "Lead is already cancelled; it cannot be confirmed",
	}, {
		name:   "wrong number needs its phone edited first",
		lead:   leadWith(status(lead.StatusWrongNumber)),
		m:      withEdits(mutation.Edits{Phone: &mutation.Change[string]{Old: "0612345678", New: "0698765432"}}),
		code:   mutation.CodeTransition,
		reason: "Lead is already marked wrong number; it cannot be confirmed",
	}, {
		name: "transition checked before edits",
		lead: leadWith(status(lead.StatusCancelled)),
		m:    withEdits(mutation.Edits{Phone: &mutation.Change[string]{Old: "stale", New: "0698765432"}}),
		code: mutation.CodeTransition,
	}, {
		name:   "stale edit",
		lead:   baseLead(),
		m:      withEdits(mutation.Edits{COD: &mutation.Change[money.Amount]{Old: 199 * money.Dirham, New: 260 * money.Dirham}}),
		code:   mutation.CodeStale,
		reason: "Cash-on-delivery amount is now 240,00 MAD (changed since you edited it; lead last updated 2025-06-01 09:00 UTC)",
	}, {
		name:   "invalid edit",
		lead:   baseLead(),
		m:      withEdits(mutation.Edits{Phone: &mutation.Change[string]{Old: "0612345678", New: "123"}}),
		code:   mutation.CodeInvalid,
		reason: `Phone "123" is not a valid phone number`,
	}})
}

func TestCancelLead(t *testing.T) {
	cancel := mutation.CancelLead{Lead: leadID, EventID: eventID, Reason: "customer changed their mind"}
	applied := func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
		require.Equal(t, lead.StatusCancelled, res.Lead.Status)
		require.Equal(t, "customer changed their mind", res.Lead.CancelReason)
		require.Equal(t, mutation.EventCancel, res.Events[0].Kind)
		require.Equal(t, "customer changed their mind", res.Events[0].Note)
	}
	runCases(t, []mutationCase{
		{name: "new", lead: baseLead(), m: cancel, check: applied},
		{name: "confirmed", lead: leadWith(status(lead.StatusConfirmed)), m: cancel, check: applied},
		{name: "wrong number", lead: leadWith(status(lead.StatusWrongNumber)), m: cancel, check: applied},
		{
			name: "callback",
			lead: leadWith(status(lead.StatusCallback), func(l *mutation.Lead) { l.CallbackAt = now.Add(time.Hour) }),
			m:    cancel,
			check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
				applied(t, cur, res)
				require.True(t, res.Lead.CallbackAt.IsZero())
			},
		},
		{
			name:   "blank reason",
			lead:   baseLead(),
			m:      mutation.CancelLead{Lead: leadID, EventID: eventID, Reason: " \n "},
			code:   mutation.CodeInvalid,
			reason: "Cancel reason is empty",
		},
		{
			name:   "already cancelled",
			lead:   leadWith(status(lead.StatusCancelled)),
			m:      cancel,
			code:   mutation.CodeTransition,
			reason: "Lead is already cancelled",
		},
		{
			name:   "duplicate",
			lead:   leadWith(dupOf),
			m:      cancel,
			code:   mutation.CodeTransition,
			reason: "Lead is already marked duplicate; it cannot be cancelled",
		},
	})
}

func TestDuplicate(t *testing.T) {
	mark := mutation.MarkDuplicate{Lead: leadID, EventID: eventID, DuplicateOf: otherID}
	unmark := mutation.UnmarkDuplicate{Lead: leadID, EventID: eventID}
	marked := func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
		require.Equal(t, lead.StatusDuplicate, res.Lead.Status)
		require.Equal(t, otherID, res.Lead.DuplicateOf)
		require.Equal(t, mutation.EventDup, res.Events[0].Kind)
		require.Equal(t, map[string]string{"duplicate_of": otherID.String()}, res.Events[0].Data)
	}
	runCases(t, []mutationCase{
		{name: "mark new", lead: baseLead(), m: mark, check: marked},
		{name: "mark no answer", lead: leadWith(status(lead.StatusNoAnswer)), m: mark, check: marked},
		{name: "mark wrong number", lead: leadWith(status(lead.StatusWrongNumber)), m: mark, check: marked},
		{
			name:   "mark as itself",
			lead:   baseLead(),
			m:      mutation.MarkDuplicate{Lead: leadID, EventID: eventID, DuplicateOf: leadID},
			code:   mutation.CodeInvalid,
			reason: "A lead cannot be a duplicate of itself",
		},
		{
			name:   "mark without the other lead",
			lead:   baseLead(),
			m:      mutation.MarkDuplicate{Lead: leadID, EventID: eventID},
			code:   mutation.CodeInvalid,
			reason: "The lead it duplicates is missing",
		},
		{
			name:   "mark twice",
			lead:   leadWith(dupOf),
			m:      mark,
			code:   mutation.CodeTransition,
			reason: "Lead is already marked duplicate",
		},
		{
			name:   "mark confirmed",
			lead:   leadWith(status(lead.StatusConfirmed)),
			m:      mark,
			code:   mutation.CodeTransition,
			reason: "Lead is already confirmed; it cannot be marked duplicate",
		},
		{
			name: "unmark",
			lead: leadWith(dupOf),
			m:    unmark,
			check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
				require.Equal(t, lead.StatusNew, res.Lead.Status)
				require.Equal(t, uuid.Nil, res.Lead.DuplicateOf)
				require.Equal(t, mutation.EventUndup, res.Events[0].Kind)
				require.Equal(t, lead.StatusDuplicate, res.Events[0].FromStatus)
				require.Equal(t, lead.StatusNew, res.Events[0].ToStatus)
			},
		},
		{
			name:   "unmark a lead not marked",
			lead:   leadWith(status(lead.StatusNoAnswer)),
			m:      unmark,
			code:   mutation.CodeTransition,
			reason: "Lead is not marked duplicate",
		},
	})
}

func TestEditLead(t *testing.T) {
	edit := func(e mutation.Edits) mutation.EditLead {
		return mutation.EditLead{Lead: leadID, EventID: eventID, Edits: e}
	}
	str := func(old, new string) *mutation.Change[string] { return &mutation.Change[string]{Old: old, New: new} }
	newItems := []mutation.Item{{SKU: "ARG-100", Name: "Argan oil 100 ml", Qty: 1, UnitPrice: 199 * money.Dirham}}
	const staleTail = " (changed since you edited it; lead last updated 2025-06-01 09:00 UTC)"
	runCases(t, []mutationCase{{
		name: "customer name",
		lead: baseLead(),
		m:    edit(mutation.Edits{CustomerName: str("Fatima Zahra", "Fatima Zahra Alaoui")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "Fatima Zahra Alaoui", res.Lead.CustomerName)
			require.Equal(t, lead.StatusNew, res.Lead.Status)
			require.Equal(t, []mutation.LeadEvent{{
				ID: eventID, StoreID: storeID, LeadID: leadID, CreatedAt: now, ActorID: saraID, Kind: mutation.EventEdit,
				Data: map[string]string{"customer_name": "Fatima Zahra Alaoui", "customer_name_old": "Fatima Zahra"},
			}}, res.Events)
		},
	}, {
		name: "phone",
		lead: leadWith(status(lead.StatusNoAnswer)),
		m:    edit(mutation.Edits{Phone: str("0612345678", "+212 698-765432")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "+212 698-765432", res.Lead.PhoneRaw)
			require.Equal(t, "+212698765432", res.Lead.PhoneE164)
			require.Equal(t, lead.StatusNoAnswer, res.Lead.Status, "only wrong_number goes back to new")
		},
	}, {
		name: "phone of a wrong number lead",
		lead: leadWith(status(lead.StatusWrongNumber)),
		m:    edit(mutation.Edits{Phone: str("0612345678", "0698765432")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, lead.StatusNew, res.Lead.Status)
			require.Equal(t, lead.StatusWrongNumber, res.Events[0].FromStatus)
			require.Equal(t, lead.StatusNew, res.Events[0].ToStatus)
		},
	}, {
		name: "phone of a wrong number lead, same number written differently",
		lead: leadWith(status(lead.StatusWrongNumber)),
		m:    edit(mutation.Edits{Phone: str("0612345678", "06 12 34 56 78")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "06 12 34 56 78", res.Lead.PhoneRaw)
			require.Equal(t, lead.StatusWrongNumber, res.Lead.Status)
		},
	}, {
		name: "city",
		lead: baseLead(),
		m:    edit(mutation.Edits{City: str("casa", "Rbat")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "Rbat", res.Lead.CityRaw)
			require.Equal(t, "rabat", res.Lead.CityID)
			require.Equal(t, "rabat", res.Events[0].Data["city_id"])
		},
	}, {
		name: "address, items and amount",
		lead: leadWith(status(lead.StatusConfirmed)),
		m: edit(mutation.Edits{
			Address: str("12 rue des Oliviers, Maarif", "Apt 3\n14 rue des Oliviers"),
			Items:   &mutation.Change[[]mutation.Item]{Old: baseLead().Items, New: newItems},
			COD:     &mutation.Change[money.Amount]{Old: 240 * money.Dirham, New: 199 * money.Dirham},
		}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "Apt 3\n14 rue des Oliviers", res.Lead.Address)
			require.Equal(t, newItems, res.Lead.Items)
			require.Equal(t, 199*money.Dirham, res.Lead.COD)
			require.Equal(t, `[{"sku":"ARG-100","name":"Argan oil 100 ml","qty":1,"unit_price":19900}]`, res.Events[0].Data["items"])
			require.Equal(t, "199.00", res.Events[0].Data["cod"])
		},
	}, {
		name: "the same change made by someone else is a no-op",
		lead: leadWith(func(l *mutation.Lead) { l.Address = "14 rue des Oliviers" }),
		m:    edit(mutation.Edits{Address: str("12 rue des Oliviers, Maarif", "14 rue des Oliviers")}),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, "14 rue des Oliviers", res.Lead.Address)
			require.Nil(t, res.Events[0].Data)
		},
	}, {
		name:   "stale phone",
		lead:   leadWith(func(l *mutation.Lead) { l.PhoneRaw = "0698765432" }),
		m:      edit(mutation.Edits{Phone: str("0612345678", "0661000000")}),
		code:   mutation.CodeStale,
		reason: `Phone is now "0698765432"` + staleTail,
	}, {
		name: "stale fields are all named",
		lead: leadWith(func(l *mutation.Lead) { l.CityRaw, l.Items = "", nil }),
		m: edit(mutation.Edits{
			CustomerName: str("Fatima Zahra", "Fatima"),
			City:         str("Casablanca", "Rabat"),
			Items:        &mutation.Change[[]mutation.Item]{Old: newItems, New: baseLead().Items},
		}),
		code:   mutation.CodeStale,
		reason: `City is now empty; Items are now empty` + staleTail,
	}, {
		name:   "stale items and amount",
		lead:   leadWith(func(l *mutation.Lead) { l.Items = newItems }),
		m:      edit(mutation.Edits{Items: &mutation.Change[[]mutation.Item]{Old: baseLead().Items, New: nil}}),
		code:   mutation.CodeStale,
		reason: `Items are now 1 × Argan oil 100 ml` + staleTail,
	}, {
		name:   "stale before invalid",
		lead:   baseLead(),
		m:      edit(mutation.Edits{Address: str("old", "new"), Phone: str("0612345678", "123")}),
		code:   mutation.CodeStale,
		reason: `Address is now "12 rue des Oliviers, Maarif"` + staleTail,
	}, {
		name:   "stale without a known update time",
		lead:   leadWith(func(l *mutation.Lead) { l.UpdatedAt = time.Time{} }),
		m:      edit(mutation.Edits{Address: str("old", "new")}),
		code:   mutation.CodeStale,
		reason: `Address is now "12 rue des Oliviers, Maarif" (changed since you edited it)`,
	}, {
		name:   "invalid phone",
		lead:   baseLead(),
		m:      edit(mutation.Edits{Phone: str("0612345678", "06123456")}),
		code:   mutation.CodeInvalid,
		reason: `Phone "06123456" is not a valid phone number`,
	}, {
		name:   "unknown city",
		lead:   baseLead(),
		m:      edit(mutation.Edits{City: str("casa", "casablnca")}),
		code:   mutation.CodeInvalid,
		reason: `Unknown city "casablnca" (did you mean Casablanca?)`,
	}, {
		name:   "no edit",
		lead:   baseLead(),
		m:      edit(mutation.Edits{}),
		code:   mutation.CodeInvalid,
		reason: "No field is edited",
	}, {
		name:   "edit that changes nothing",
		lead:   baseLead(),
		m:      edit(mutation.Edits{Address: str("x", "x")}),
		code:   mutation.CodeInvalid,
		reason: "Address edit does not change it",
	}, {
		name:   "name too long",
		lead:   baseLead(),
		m:      edit(mutation.Edits{CustomerName: str("Fatima Zahra", strings.Repeat("n", 201))}),
		code:   mutation.CodeInvalid,
		reason: "Customer name is longer than 200 characters",
	}, {
		name:   "name on two lines",
		lead:   baseLead(),
		m:      edit(mutation.Edits{CustomerName: str("Fatima Zahra", "Fatima\nZahra")}),
		code:   mutation.CodeInvalid,
		reason: "Customer name contains a control character",
	}, {
		name:   "item without quantity",
		lead:   baseLead(),
		m:      edit(mutation.Edits{Items: &mutation.Change[[]mutation.Item]{Old: baseLead().Items, New: []mutation.Item{{Name: "Soap"}}}}),
		code:   mutation.CodeInvalid,
		reason: "Item 1 quantity 0 is not between 1 and 10000",
	}, {
		name:   "negative amount",
		lead:   baseLead(),
		m:      edit(mutation.Edits{COD: &mutation.Change[money.Amount]{Old: 240 * money.Dirham, New: -1}}),
		code:   mutation.CodeInvalid,
		reason: "Cash-on-delivery amount is negative",
	}, {
		name:   "cancelled lead",
		lead:   leadWith(status(lead.StatusCancelled)),
		m:      edit(mutation.Edits{Address: str("12 rue des Oliviers, Maarif", "14 rue des Oliviers")}),
		code:   mutation.CodeTransition,
		reason: "Lead is already cancelled; it cannot be edited",
	}})
}

// TestEditsMerge: two agents' edits of different fields, made on the same
// copy of the lead, both apply in either order.
func TestEditsMerge(t *testing.T) {
	phone := mutation.EditLead{Lead: leadID, EventID: eventID, Edits: mutation.Edits{
		Phone: &mutation.Change[string]{Old: "0612345678", New: "0698765432"},
	}}
	address := mutation.EditLead{Lead: leadID, EventID: uuid.MustParse("01900000-0000-7000-8000-0000000000e2"), Edits: mutation.Edits{
		Address: &mutation.Change[string]{Old: "12 rue des Oliviers, Maarif", New: "14 rue des Oliviers"},
	}}
	orders := [][2]mutation.EditLead{{phone, address}, {address, phone}}
	for _, o := range orders {
		first := requireApplied(t, sara(), baseLead(), o[0])
		second := requireApplied(t, seller(), &first.Lead, o[1])
		require.Equal(t, "0698765432", second.Lead.PhoneRaw)
		require.Equal(t, "14 rue des Oliviers", second.Lead.Address)
	}
	// The same field, edited from the same old value, is stale the second time.
	other := phone
	other.Edits.Phone = &mutation.Change[string]{Old: "0612345678", New: "0661000000"}
	first := requireApplied(t, sara(), baseLead(), phone)
	requireRejected(t, seller(), &first.Lead, other, mutation.CodeStale,
		`Phone is now "0698765432" (changed since you edited it; lead last updated 2025-06-01 10:00 UTC)`)
}

func TestReleaseLead(t *testing.T) {
	release := mutation.ReleaseLead{Lead: leadID, EventID: eventID}
	runCases(t, []mutationCase{{
		name: "holder",
		lead: baseLead(),
		m:    release,
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, uuid.Nil, res.Lead.AssignedTo)
			require.True(t, res.Lead.LeaseUntil.IsZero())
			require.Equal(t, mutation.EventRelease, res.Events[0].Kind)
			require.Equal(t, map[string]string{"agent": saraID.String()}, res.Events[0].Data)
		},
	}, {
		name: "seller releases an agent's lead",
		env:  seller(),
		lead: leadWith(heldBy(karimID)),
		m:    release,
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, uuid.Nil, res.Lead.AssignedTo)
		},
	}, {
		name:   "another agent",
		env:    karim(),
		lead:   baseLead(),
		m:      release,
		code:   mutation.CodeNotHolder,
		reason: "Lead was claimed by Sara",
	}, {
		name:   "agent, lead in the pool",
		lead:   leadWith(inPool),
		m:      release,
		code:   mutation.CodeNotHolder,
		reason: "Lead is back in the pool",
	}})
}

func TestAssignLead(t *testing.T) {
	assign := func(agent uuid.UUID) mutation.AssignLead {
		return mutation.AssignLead{Lead: leadID, EventID: eventID, AgentID: agent}
	}
	toKarim := func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
		require.Equal(t, karimID, res.Lead.AssignedTo)
		require.Equal(t, now.Add(lease), res.Lead.LeaseUntil)
		require.Equal(t, mutation.EventAssign, res.Events[0].Kind)
		require.Equal(t, karimID.String(), res.Events[0].Data["agent"])
	}
	sellerHolds := seller()
	sellerHolds.Actor.UserID = saraID
	runCases(t, []mutationCase{{
		name:  "pool lead",
		env:   seller(),
		lead:  leadWith(inPool),
		m:     assign(karimID),
		check: toKarim,
	}, {
		name: "reassign",
		env:  admin(),
		lead: baseLead(),
		m:    assign(karimID),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			toKarim(t, cur, res)
			require.Equal(t, saraID.String(), res.Events[0].Data["previous_agent"])
		},
	}, {
		name:  "a lapsed lease is renewed for the same agent",
		env:   seller(),
		lead:  leadWith(heldBy(karimID), leaseLapsed),
		m:     assign(karimID),
		check: toKarim,
	}, {
		name:  "a holder with the permission hands the lead over",
		env:   env(saraID, mutation.RoleAgent, "leads.assign"),
		lead:  baseLead(),
		m:     assign(karimID),
		check: toKarim,
	}, {
		name: "back to the pool",
		env:  seller(),
		lead: baseLead(),
		m:    assign(uuid.Nil),
		check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
			require.Equal(t, uuid.Nil, res.Lead.AssignedTo)
			require.True(t, res.Lead.LeaseUntil.IsZero())
			require.Equal(t, map[string]string{"previous_agent": saraID.String()}, res.Events[0].Data)
		},
	}, {
		name:   "agent without the permission",
		lead:   baseLead(),
		m:      assign(karimID),
		code:   mutation.CodeForbidden,
		reason: "You are not allowed to assign leads in this store",
	}})
}

func TestAddNote(t *testing.T) {
	note := mutation.AddNote{Lead: leadID, EventID: eventID, Note: "prefers evening calls"}
	unchanged := func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
		want := clone(cur)
		want.UpdatedAt, want.LeaseUntil = now, now.Add(lease)
		require.Equal(t, *want, res.Lead)
		require.Equal(t, mutation.EventNote, res.Events[0].Kind)
		require.Equal(t, "prefers evening calls", res.Events[0].Note)
	}
	runCases(t, []mutationCase{
		{name: "new", lead: baseLead(), m: note, check: unchanged},
		{name: "cancelled", lead: leadWith(status(lead.StatusCancelled)), m: note, check: unchanged},
		{
			name: "callback keeps its time",
			lead: leadWith(status(lead.StatusCallback), func(l *mutation.Lead) { l.CallbackAt = now.Add(time.Hour) }),
			m:    note,
			check: func(t *testing.T, cur *mutation.Lead, res mutation.Result) {
				require.Equal(t, now.Add(time.Hour), res.Lead.CallbackAt)
			},
		},
		{
			name:   "blank",
			lead:   baseLead(),
			m:      mutation.AddNote{Lead: leadID, EventID: eventID, Note: "  "},
			code:   mutation.CodeInvalid,
			reason: "Note is empty",
		},
	})
}

// TestDeterminism applies every mutation many times, built in memory and
// decoded from its encoding (the desktop's and the server's copies), with
// fresh but equal environments: the results are identical and depend on
// env.Now only, never on the wall clock.
func TestDeterminism(t *testing.T) {
	for _, s := range samples() {
		for _, mk := range []func() mutation.Env{seller, admin} {
			want, rej := s.m.Apply(mk(), s.lead())
			require.Nil(t, rej)
			name, version, args, err := mutation.Encode(s.m)
			require.NoError(t, err)
			for range 20 {
				decoded, err := mutation.Decode(name, version, args)
				require.NoError(t, err)
				for _, m := range []mutation.Mutation{s.m, decoded} {
					got, rej := m.Apply(mk(), s.lead())
					require.Nil(t, rej)
					require.Equal(t, want, got)
				}
			}
			past := mk()
			past.Now = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			got, rej := s.m.Apply(past, s.lead())
			require.Nil(t, rej)
			require.Equal(t, past.Now, got.Lead.UpdatedAt)
			require.Equal(t, past.Now, got.Events[0].CreatedAt)
		}
	}
}
