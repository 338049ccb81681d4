// Package sample holds a realistic seller sheet — 1,000 hand-typed orders
// with mixed French, Arabic and Darija spellings, messy phones and prices,
// repeated orders and formulas — used by the intake tests and imported by the
// demo.
package sample

import _ "embed"

// CSV is the sheet, header row first.
//
//go:embed leads-sample.csv
var CSV []byte
