package remit

// Fold and FoldSlow expose the header folding and its Unicode-only path.
var Fold = fold

func FoldSlow(s string) string { return foldUnicode(s) }
