package sheets

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseRange reads arbitrary connection ranges: it never panics, what it
// accepts names a sheet and letter columns, and the A1 ranges it then asks
// the API for parse back to the same sheet and columns.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"Sheet1", "'My Sheet'!A:L", "Commandes!B:M", "'It''s'!A1:Z99", "!A:B", "Sheet1!1:2", "'x", "x!", "a!b!C:D", "'!'!A:A", "Feuille 1!aa:zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.Sheet == "" || !isLetters(r.FirstCol) || r.LastCol != "" && !isLetters(r.LastCol) {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		a1 := r.rows(2, 9)
		back, err := ParseRange(a1)
		if err != nil {
			t.Fatalf("%q → %q does not parse back: %v", s, a1, err)
		}
		if back.Sheet != r.Sheet || back.FirstCol != r.FirstCol || back.LastCol != r.LastCol {
			t.Fatalf("%q → %q → %+v, want %+v", s, a1, back, r)
		}
		if !strings.HasSuffix(a1, "9") {
			t.Fatalf("%q: rows missing in %q", s, a1)
		}
	})
}

// FuzzDecodeBatch reads arbitrary batchGet responses: whenever the fast
// decoder takes one, it reads the same cells encoding/json does (through
// cellsOf), and whatever it declines goes to encoding/json.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"spreadsheetId":"b","valueRanges":[{"range":"'S'!A2:L3","majorDimension":"ROWS","values":[["a","b"],["c"]]},{"range":"'S'!A4:L5","majorDimension":"ROWS"}]}`,
		`{"valueRanges":[{"values":[["0612345678",12.5,true,false,null,-0,1e21,"é","\u00e9"]]}]}`,
		`{"valueRanges":[{"values":[[[1],{"a":1}]]}]}`,
		`{"valueRanges":null}`, `{"valueRanges":[null,{"values":null},{"values":[null,[]]}]}`,
		`{"ValueRanges":[{"values":[["x"]]}]}`, `{"valueRanges":[{"Values":[["x"]]}]}`,
		`{"valueRanges":[{"values":[["x"]]}],"valueRanges":[]}`, `{"valueRanges":[{"values":[["x"]],"values":[]}]}`,
		`{"x":"\q","valueRanges":[]}`, `{"x":"\ud800","valueRanges":[]}`, `{"valueRanges":[{"values":[["\xff"]]}]}`,
		`{"valueRanges":[{"values":[[01]]}]}`, `{"valueRanges":[{"values":[[1e400]]}]}`, `{"valueRanges":[]} x`,
		` {"valueRanges" : [ { "values" : [ [ "a" , 1 ] ] } ] } `, `null`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := slowBatch(body)
		got, ok := fastBatch(body)
		if !ok {
			return
		}
		if werr != nil {
			t.Fatalf("%q: the fast decoder read %q where encoding/json fails: %v", body, got, werr)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d ranges, want %d", body, len(got), len(want))
		}
		for i := range want {
			if len(got[i]) != len(want[i]) {
				t.Fatalf("%q: range %d has %d rows, want %d", body, i, len(got[i]), len(want[i]))
			}
			for j := range want[i] {
				if !slices.Equal(got[i][j], want[i][j]) {
					t.Fatalf("%q: range %d row %d is %q, want %q", body, i, j, got[i][j], want[i][j])
				}
			}
		}
	})
}

// The fast decoder takes what the API answers (and the fake's answers).
func TestDecodeBatchFast(t *testing.T) {
	body := `{"spreadsheetId":"b","valueRanges":[{"range":"'S'!A2:C3","majorDimension":"ROWS","values":[["a","é",""],["c"]]},
{"range":"'S'!A4:C5","majorDimension":"ROWS"},{"range":"'S'!A6:C6","majorDimension":"ROWS","values":[[12.5,true,null]]}]}`
	got, ok := fastBatch([]byte(body))
	if !ok {
		t.Fatal("declined")
	}
	want := [][][]string{{{"a", "é", ""}, {"c"}}, {}, {{"12.5", "true", ""}}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if len(got[i]) != len(want[i]) || got[i] == nil {
			t.Fatalf("got %q, want %q", got, want)
		}
		for j := range want[i] {
			if !slices.Equal(got[i][j], want[i][j]) {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
}
