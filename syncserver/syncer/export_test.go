package syncer

// LeadsSQL is what a push reads (and locks) its leads with, for the plan
// test.
var LeadsSQL = leadsSQL
