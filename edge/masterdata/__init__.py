"""Master data for tills (issue 12): collections read from ERPNext, kept in the gateway's
store as change logs, served as pages and deltas with cursors."""
