package remit

// Fold and FoldSlow expose the header folding and its Unicode-only path.
var Fold = fold

func FoldSlow(s string) string { return foldUnicode(s) }

// The statements looking a store's parcels and lines up by key, for the
// plan test.
const (
	FeesParcelsSQL       = feesParcelsSQL
	ParcelsByTrackingSQL = parcelsByTrackingSQL
	FirstLinesSQL        = firstLinesSQL
)
