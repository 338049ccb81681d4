package ameex

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/leadify/leadify/syncserver/carrier"
)

// FuzzParseResponse feeds any body through every Ameex answer parser.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		`{"login":"error","api":null}`,
		`{"login":"success","api":{"type":"error","msg":"Veuillez choisir l'expéditeur"}}`,
		`{"login":"success","api":{"type":"success","msg":"ok","parcel":{"code":"MRK0824B2LP5041691"}}}`,
		`{"login":"success","api":{"type":"success","msg":"ok"}}`,
		`{"login":"success","api":{"cities":[{"id":12,"name":"CASABLANCA"},{"id":"13","name":"FES"}]}}`,
		`{"login":"success","api":{"tracking":{"0":{"statut":"NEW_PARCEL","statut_name":"Nouveau","time":1773580631,"time_str":"15/03/2026 13:17","hub_name":"HUB"},"10":{"statut":"DELIVERED","time":"1773590631","city_name":"CASA"}}}}`,
		`{"login":"success","api":{"tracking":{"MRK1":{"0":{"statut":"SENT","time":1}},"MRK2":[]}}}`,
		`{"login":"success","api":{"aaData":[{"TBL_CODE":"MRK1","TBL_ORDER_NUM":"L-1"}],"iTotalDisplayRecords":1}}`,
		`{"login":"success","api":{"tracking":[{"statut":"RETURNED"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		api, err := parseEnvelope("op", carrier.Response{Status: 200, Body: body})
		if err != nil {
			return
		}
		_ = parseCreated(api)
		_, _ = parseList(api, "L-1")
		_, _ = parseCities(api)
		if got, ok := parseMassTracking(api, []string{"MRK1", "MRK2"}); !ok && got != nil {
			t.Fatal("an unreadable mass tracking answer returned results")
		}
		var v struct {
			Tracking json.RawMessage `json:"tracking"`
		}
		if json.Unmarshal(api, &v) == nil {
			if tr, err := parseHistory("X", v.Tracking); err == nil {
				for _, ev := range tr.Events {
					if ev.Known != ev.Status.Valid() {
						t.Fatalf("event %+v: Known and Status disagree", ev)
					}
				}
			}
		}
	})
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		"CODE=MRK1&STATUT=DELIVERED&STATUT_NAME=Livr%C3%A9&STATUT_COLOR=%23fff&STATUT_S=&STATUT_S_NAME=&COMMENT=&DATE=2026-03-15+13%3A17%3A11",
		"CODE=MRK1&STATUT=IN_PROGRESS&STATUT_S=NO_ANSWER",
		"CODE=MRK1&STATUT=WHAT", "STATUT=DELIVERED", "%",
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
	})
}
