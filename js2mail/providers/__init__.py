"""Mailbox providers: SMTP, Gmail API and Microsoft Graph behind one interface (`base.Provider`)."""
