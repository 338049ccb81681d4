package mutation

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on the arguments, in characters (runes) for text. Decode and Encode
// refuse arguments beyond them, and Apply rejects them with CodeInvalid.
const (
	maxNote    = 2000 // call notes, notes, cancel reasons
	maxName    = 200  // customer and item names
	maxAddress = 500
	maxPhone   = 64
	maxCity    = 100
	maxSKU     = 100
	maxItems   = 100
	maxQty     = 10000
)

// checkIDs fails if the lead or event id is missing.
func checkIDs(leadID, eventID uuid.UUID) error {
	if leadID == uuid.Nil {
		return errors.New("lead id is missing")
	}
	if eventID == uuid.Nil {
		return errors.New("event id is missing")
	}
	return nil
}

// checkLine fails if s is longer than max characters or holds a control or
// line-separator character: single-line text (names, phone, city, SKU).
func checkLine(label, s string, max int) error {
	return checkText(label, s, max, false)
}

// checkMultiline is checkLine for text that may span lines (notes, reasons,
// addresses): newlines, carriage returns and tabs are allowed.
func checkMultiline(label, s string, max int) error {
	return checkText(label, s, max, true)
}

func checkText(label, s string, max int, multiline bool) error {
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%s is longer than %d characters", label, max)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || (!multiline && (r == '\u2028' || r == '\u2029')) {
			return fmt.Errorf("%s contains a control character", label)
		}
	}
	return nil
}

// checkRequired is checkMultiline for text that must not be blank.
func checkRequired(label, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%s is empty", label)
	}
	return checkMultiline(label, s, max)
}

// checkItems fails for more than maxItems items or a malformed one: a blank
// or too long name, a too long SKU, a quantity outside 1…maxQty or a negative
// unit price.
func checkItems(items []Item) error {
	if len(items) > maxItems {
		return fmt.Errorf("an order has at most %d items", maxItems)
	}
	for i, it := range items {
		if strings.TrimSpace(it.Name) == "" {
			return fmt.Errorf("item %d has no name", i+1)
		}
		if err := checkLine(fmt.Sprintf("item %d name", i+1), it.Name, maxName); err != nil {
			return err
		}
		if err := checkLine(fmt.Sprintf("item %d SKU", i+1), it.SKU, maxSKU); err != nil {
			return err
		}
		if it.Qty < 1 || it.Qty > maxQty {
			return fmt.Errorf("item %d quantity %d is not between 1 and %d", i+1, it.Qty, maxQty)
		}
		if it.UnitPrice < 0 {
			return fmt.Errorf("item %d unit price is negative", i+1)
		}
	}
	return nil
}
