package coliix

import (
	"net/url"
	"testing"

	"github.com/leadify/leadify/syncserver/carrier"
)

// FuzzParseResponse feeds any body to the envelope and history parsers:
// they may refuse it, never panic, and every event they return has a
// status that is either known or flagged.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"status":200,"msg":"Commande ajoutée avec succès","tracking":"4-CSA03261186858FB"}`,
		`{"status":204,"msg":"Le compte est désactivé"}`,
		`{"status":"401","msg":"Token invalide ou expiré"}`,
		`{"status":true,"msg":[{"code":"4-CSA1","status":"Nouveau Colis ","time":"2026-03-15 13:17 :11","etat":"Non Payé"}],"tracking":"4-CSA1","delivery":{"name":"a","phone":"b"}}`,
		`{"status":true,"msg":[],"tracking":"X"}`,
		`{"status":true,"msg":"oops"}`,
		`{"status":null}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := parseEnvelope(body)
		if err != nil {
			return
		}
		tr, err := parseHistory("X", env)
		if err != nil {
			return
		}
		for _, ev := range tr.Events {
			if ev.Known != ev.Status.Valid() {
				t.Fatalf("event %+v: Known and Status disagree", ev)
			}
		}
	})
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		"code=4-CSA1&state=Livr%C3%A9+&datereported=2026-03-15+13%3A17+%3A11&note=ok",
		"code=4-CSA1&state=Confirmer+par+le+livreur",
		"code=&state=x", "%zz", "state=Livré",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		ev, err := ParseWebhook(v)
		if err != nil {
			return
		}
		if ev.Code == "" || ev.Raw == "" || ev.Known != ev.Status.Valid() {
			t.Fatalf("bad event %+v", ev)
		}
		if s, ok := Statuses.Lookup(ev.Raw); ok != ev.Known || s != ev.Status {
			t.Fatalf("event %+v disagrees with the table", ev)
		}
		_ = carrier.Fold(ev.Raw)
	})
}
