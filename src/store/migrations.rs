//! Numbered schema migrations. Each runs once, in order, inside a transaction; the schema version
//! is SQLite's `user_version`. Never edit a released migration: add the next one.

/// Triggers that count every insert, update and delete of each table in `config_generation`.
macro_rules! counts_changes_of {
    ($($table:literal),*) => {
        concat!($(
            "CREATE TRIGGER ", $table, "_inserted AFTER INSERT ON ", $table,
            " BEGIN UPDATE config_generation SET n = n + 1; END;",
            "CREATE TRIGGER ", $table, "_updated AFTER UPDATE ON ", $table,
            " BEGIN UPDATE config_generation SET n = n + 1; END;",
            "CREATE TRIGGER ", $table, "_deleted AFTER DELETE ON ", $table,
            " BEGIN UPDATE config_generation SET n = n + 1; END;",
        )*)
    };
}

/// Triggers that count every insert, update and delete of a table in `config_generation`, and
/// log in `config_changes` which entry of the workers' cache it touched: `kind`, and the key
/// `column` holds in the old and the new row (a kind without a column: every entry of it). The
/// log keeps the last 10,000 generations.
macro_rules! logs_changes_of {
    ($table:literal, $kind:literal) => {
        logs_changes_of!(@triggers $table, concat!("SELECT n, '", $kind, "', NULL FROM config_generation"),
            concat!("SELECT n, '", $kind, "', NULL FROM config_generation"))
    };
    ($table:literal, $kind:literal, $column:literal) => {
        logs_changes_of!(@triggers $table,
            concat!("SELECT n, '", $kind, "', new.", $column, " FROM config_generation"),
            concat!("SELECT n, '", $kind, "', old.", $column, " FROM config_generation"))
    };
    (@triggers $table:literal, $new:expr, $old:expr) => {
        concat!(
            "DROP TRIGGER ", $table, "_inserted; DROP TRIGGER ", $table, "_updated; DROP TRIGGER ", $table, "_deleted;",
            "CREATE TRIGGER ", $table, "_inserted AFTER INSERT ON ", $table, " BEGIN ",
            "UPDATE config_generation SET n = n + 1; ",
            "INSERT INTO config_changes (generation, kind, key) ", $new, "; ",
            "DELETE FROM config_changes WHERE generation <= (SELECT n - 10000 FROM config_generation); END;",
            "CREATE TRIGGER ", $table, "_updated AFTER UPDATE ON ", $table, " BEGIN ",
            "UPDATE config_generation SET n = n + 1; ",
            "INSERT INTO config_changes (generation, kind, key) ", $old, " UNION ", $new, "; ",
            "DELETE FROM config_changes WHERE generation <= (SELECT n - 10000 FROM config_generation); END;",
            "CREATE TRIGGER ", $table, "_deleted AFTER DELETE ON ", $table, " BEGIN ",
            "UPDATE config_generation SET n = n + 1; ",
            "INSERT INTO config_changes (generation, kind, key) ", $old, "; ",
            "DELETE FROM config_changes WHERE generation <= (SELECT n - 10000 FROM config_generation); END;",
        )
    };
}

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the foundation
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE practices (
        id         INTEGER PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE domains (
        id          INTEGER PRIMARY KEY,
        practice_id INTEGER NOT NULL REFERENCES practices(id),
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE addresses (
        id            INTEGER PRIMARY KEY,
        domain_id     INTEGER NOT NULL REFERENCES domains(id),
        local         TEXT NOT NULL,
        address       TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE private_keys (
        id                INTEGER PRIMARY KEY,
        domain_id         INTEGER REFERENCES domains(id), -- NULL for the development CA
        owner             TEXT NOT NULL,
        public_key_sha256 TEXT NOT NULL UNIQUE,
        sealed            BLOB NOT NULL,
        created_at        INTEGER NOT NULL
    );
    CREATE TABLE certificates (
        id         INTEGER PRIMARY KEY,
        domain_id  INTEGER NOT NULL REFERENCES domains(id),
        owner      TEXT NOT NULL,
        binding    TEXT NOT NULL CHECK (binding IN ('address', 'domain')),
        subject    TEXT NOT NULL,
        issuer     TEXT NOT NULL,
        sha256     TEXT NOT NULL UNIQUE,
        not_before INTEGER NOT NULL,
        not_after  INTEGER NOT NULL,
        key_id     INTEGER REFERENCES private_keys(id),
        der        BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX certificates_owner ON certificates(owner);
    CREATE TABLE anchors (
        id        INTEGER PRIMARY KEY,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        subject   TEXT NOT NULL,
        sha256    TEXT NOT NULL,
        not_after INTEGER NOT NULL,
        incoming  INTEGER NOT NULL,
        outgoing  INTEGER NOT NULL,
        der       BLOB NOT NULL,
        UNIQUE (domain_id, sha256)
    );
    CREATE TABLE dev_ca (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        der         BLOB NOT NULL,
        key_id      INTEGER NOT NULL REFERENCES private_keys(id)
    );
    CREATE TABLE audit_log (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail  TEXT NOT NULL
    );
    "#,
    // 2: trust bundles and the anchors of their last good copy
    r#"
    CREATE TABLE bundles (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        domain_id       INTEGER NOT NULL REFERENCES domains(id),
        source          TEXT NOT NULL,
        signer_der      BLOB,
        incoming        INTEGER NOT NULL,
        outgoing        INTEGER NOT NULL,
        last_good_at    INTEGER,
        last_attempt_at INTEGER,
        last_error      TEXT,
        created_at      INTEGER NOT NULL
    );
    CREATE TABLE bundle_anchors (
        bundle_id INTEGER NOT NULL REFERENCES bundles(id) ON DELETE CASCADE,
        subject   TEXT NOT NULL,
        sha256    TEXT NOT NULL,
        not_after INTEGER NOT NULL,
        der       BLOB NOT NULL,
        UNIQUE (bundle_id, sha256)
    );
    "#,
    // 3: certificates the development CA has revoked (kept after the certificate is removed: a
    // CRL lists a revoked serial until the certificate expires)
    r#"
    CREATE TABLE revocations (
        id         INTEGER PRIMARY KEY,
        serial     TEXT NOT NULL UNIQUE,
        sha256     TEXT NOT NULL,
        subject    TEXT NOT NULL,
        not_after  INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL,
        reason     TEXT NOT NULL
    );
    "#,
    // 4: the durable mail queue: each accepted message (encrypted under the KEK) and the state of
    // each of its recipients; and the deliveries into mailboxes, so a message resent after a crash
    // is not delivered twice
    r#"
    CREATE TABLE queue_messages (
        id               INTEGER PRIMARY KEY,
        direction        TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
        mail_from        TEXT NOT NULL,
        authenticated_as TEXT,
        message_id       TEXT NOT NULL,
        received_at      INTEGER NOT NULL,
        size             INTEGER NOT NULL,
        sealed_data      BLOB NOT NULL,
        quarantined      TEXT
    );
    CREATE TABLE queue_recipients (
        id              INTEGER PRIMARY KEY,
        message_id      INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
        recipient       TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('queued', 'deferred', 'sent', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        in_flight       INTEGER NOT NULL DEFAULT 0,
        crashes         INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX queue_due ON queue_recipients(status, next_attempt_at);
    CREATE INDEX queue_recipients_message ON queue_recipients(message_id);
    CREATE TABLE mailbox_deliveries (
        message_id   TEXT NOT NULL,
        recipient    TEXT NOT NULL,
        delivered_at INTEGER NOT NULL,
        file         TEXT NOT NULL,
        PRIMARY KEY (message_id, recipient)
    );
    "#,
    // 5: the attachments of each message delivered into a hosted mailbox, for the practice
    r#"
    CREATE TABLE received_attachments (
        id           INTEGER PRIMARY KEY,
        message_id   TEXT NOT NULL,
        recipient    TEXT NOT NULL,
        filename     TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        UNIQUE (message_id, recipient, filename, sha256)
    );
    "#,
    // 6: the recipients waiting for an attempt, in the order the workers take them: a claim walks
    // this index from its start and stops at its limit instead of sorting the whole backlog; and
    // the quarantined messages, so the claim need not read past each message's sealed data (it
    // comes before `quarantined` in the row) to find them
    r#"
    CREATE INDEX queue_waiting ON queue_recipients(next_attempt_at, id)
        WHERE status IN ('queued', 'deferred') AND in_flight = 0;
    CREATE INDEX queue_quarantined ON queue_messages(id) WHERE quarantined IS NOT NULL;
    DROP INDEX queue_due;
    "#,
    // 7: delivery notifications. Sending side: each recipient of each message an EHR sent, what
    // its notifications said and when (`tracked`, one row; `tracking_events`, the timeline).
    // Receiving side: the MDNs sent for each message delivered here (`receipts`), so each is sent
    // once. Mailbox deliveries remember who sent what, for `hisp message list --received`.
    r#"
    CREATE TABLE tracked (
        message_id     TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        sender         TEXT NOT NULL,
        subject        TEXT NOT NULL,
        final_delivery INTEGER NOT NULL,
        status         TEXT NOT NULL
                       CHECK (status IN ('queued', 'sent', 'processed', 'dispatched', 'failed', 'timed-out')),
        submitted_at   INTEGER NOT NULL,
        sent_at        INTEGER,
        processed_at   INTEGER,
        dispatched_at  INTEGER,
        failed_at      INTEGER,
        detail         TEXT,
        notified_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (message_id, recipient)
    );
    CREATE INDEX tracked_waiting ON tracked(sent_at) WHERE status IN ('sent', 'processed');
    CREATE INDEX tracked_submitted ON tracked(submitted_at);
    CREATE TABLE tracking_events (
        id         INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        recipient  TEXT NOT NULL,
        at         INTEGER NOT NULL,
        event      TEXT NOT NULL,
        detail     TEXT NOT NULL DEFAULT '',
        notice_id  TEXT
    );
    CREATE INDEX tracking_events_of ON tracking_events(message_id, recipient);
    CREATE TABLE receipts (
        message_id     TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        sender         TEXT NOT NULL,
        subject        TEXT NOT NULL,
        final_delivery INTEGER NOT NULL,
        processed_at   INTEGER,
        dispatched_at  INTEGER,
        failed_at      INTEGER,
        PRIMARY KEY (message_id, recipient)
    );
    ALTER TABLE mailbox_deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
    ALTER TABLE mailbox_deliveries ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    ALTER TABLE mailbox_deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
    "#,
    // 8: identity proofing, one row per practice: its state (readable for the gates that refuse
    // certificates and sending until it is verified) and its enrollment, sealed under the KEK (it
    // holds SSNs, card numbers and knowledge answers). A practice without a row has not started.
    // Practices that existed before proofing did were provisioned by an operator: they stay able
    // to send, and the row says why.
    r#"
    CREATE TABLE proofing (
        practice_id  INTEGER PRIMARY KEY REFERENCES practices(id) ON DELETE CASCADE,
        state        TEXT NOT NULL CHECK (state IN
                     ('not-started', 'terms-accepted', 'in-progress', 'submitted', 'verified', 'failed')),
        version      INTEGER NOT NULL,
        sealed       BLOB,
        reasons      TEXT NOT NULL DEFAULT '[]',
        decided_by   TEXT,
        decided_at   INTEGER,
        updated_at   INTEGER NOT NULL
    );
    INSERT INTO proofing (practice_id, state, version, reasons, decided_by, decided_at, updated_at)
        SELECT id, 'verified', 1,
               '[{"field":"","message":"provisioned by an operator before identity proofing existed"}]',
               'migration', CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
        FROM practices;
    "#,
    // 9: the REST API. Bearer tokens, one per EHR integration (only the SHA-256 of each is kept;
    // a token not yet bound to a practice may create one). The referrals each practice sent and
    // received, and its documents: copies of what was sent and received, sealed under the KEK
    // (they are patients' records). A message counts once per practice and way.
    r#"
    CREATE TABLE api_tokens (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        practice_id  INTEGER REFERENCES practices(id) ON DELETE CASCADE,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        revoked_at   INTEGER
    );
    CREATE TABLE referrals (
        id             INTEGER PRIMARY KEY,
        practice_id    INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        message_id     TEXT NOT NULL,
        way            TEXT NOT NULL CHECK (way IN ('sent', 'received')),
        direction      TEXT NOT NULL CHECK (direction IN ('transferring', 'receiving')),
        patient_id     TEXT NOT NULL,
        sender         TEXT NOT NULL,
        recipients     TEXT NOT NULL,
        subject        TEXT NOT NULL,
        sections       TEXT NOT NULL,
        encounter_note INTEGER NOT NULL,
        in_reply_to    TEXT,
        created_at     INTEGER NOT NULL,
        received_at    INTEGER,
        received_by    TEXT,
        UNIQUE (practice_id, message_id, way)
    );
    CREATE INDEX referrals_patient ON referrals(practice_id, patient_id);
    CREATE TABLE documents (
        id           INTEGER PRIMARY KEY,
        practice_id  INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        patient_id   TEXT,
        referral_id  INTEGER REFERENCES referrals(id) ON DELETE SET NULL,
        message_id   TEXT NOT NULL,
        way          TEXT NOT NULL CHECK (way IN ('sent', 'received')),
        filename     TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        sha256       TEXT NOT NULL,
        sealed       BLOB NOT NULL,
        created_at   INTEGER NOT NULL,
        UNIQUE (practice_id, message_id, way, filename, sha256)
    );
    CREATE INDEX documents_patient ON documents(practice_id, patient_id);
    "#,
    // 10: a count of the changes to the configuration the queue workers keep in memory between
    // messages (`config_cache`): every insert, update and delete of these tables, by any writer,
    // moves it, and a worker that sees it moved reads the configuration afresh
    concat!(
        "CREATE TABLE config_generation (n INTEGER NOT NULL);
         INSERT INTO config_generation (n) VALUES (0);",
        counts_changes_of!(
            "domains",
            "addresses",
            "private_keys",
            "certificates",
            "anchors",
            "bundles",
            "bundle_anchors",
            "practices",
            "proofing"
        )
    ),
    // 11: local parts may no longer hold '/' or '\\' (a local part names a mailbox directory, and
    // "/etc" escaped the mail directory). Addresses that hold one are set aside here with the
    // reason, not deleted: they receive no mail (RCPT refuses them), `hisp serve` lists them at
    // every start, and their keys and certificates stay for the operator to deal with.
    r#"
    CREATE TABLE set_aside_addresses (
        address      TEXT NOT NULL UNIQUE,
        reason       TEXT NOT NULL,
        set_aside_at INTEGER NOT NULL
    );
    INSERT INTO set_aside_addresses (address, reason, set_aside_at)
        SELECT address, 'its local part holds a path separator (''/'' or ''\''), which addresses may no longer hold',
               CAST(strftime('%s', 'now') AS INTEGER)
        FROM addresses WHERE instr(local, '/') > 0 OR instr(local, '\') > 0;
    DELETE FROM addresses WHERE instr(local, '/') > 0 OR instr(local, '\') > 0;
    "#,
    // 12: a Message-ID names a message only together with its sender. Sending side: each sender's
    // messages are tracked apart (another practice reusing a Message-ID neither sees nor changes
    // them). Receiving side: a delivery and its MDNs are keyed by a digest of the verified sender,
    // the Message-ID and the signed content (`delivery_key`), so a different message reusing a
    // Message-ID is delivered, and a true duplicate is not. Rows from before are keyed
    // 'legacy <sender> <Message-ID>', which the workers also look for. A practice files a referral
    // per Message-ID and sender.
    r#"
    CREATE TABLE tracked_by_sender (
        sender         TEXT NOT NULL,
        message_id     TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        subject        TEXT NOT NULL,
        final_delivery INTEGER NOT NULL,
        status         TEXT NOT NULL
                       CHECK (status IN ('queued', 'sent', 'processed', 'dispatched', 'failed', 'timed-out')),
        submitted_at   INTEGER NOT NULL,
        sent_at        INTEGER,
        processed_at   INTEGER,
        dispatched_at  INTEGER,
        failed_at      INTEGER,
        detail         TEXT,
        notified_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (sender, message_id, recipient)
    );
    INSERT INTO tracked_by_sender (sender, message_id, recipient, subject, final_delivery, status, submitted_at,
                                   sent_at, processed_at, dispatched_at, failed_at, detail, notified_at, updated_at)
        SELECT sender, message_id, recipient, subject, final_delivery, status, submitted_at,
               sent_at, processed_at, dispatched_at, failed_at, detail, notified_at, updated_at FROM tracked;
    DROP TABLE tracked;
    ALTER TABLE tracked_by_sender RENAME TO tracked;
    CREATE INDEX tracked_waiting ON tracked(sent_at) WHERE status IN ('sent', 'processed');
    CREATE INDEX tracked_submitted ON tracked(submitted_at);
    CREATE INDEX tracked_message ON tracked(message_id);
    ALTER TABLE tracking_events ADD COLUMN sender TEXT NOT NULL DEFAULT '';
    UPDATE tracking_events SET sender = coalesce((SELECT t.sender FROM tracked t
        WHERE t.message_id = tracking_events.message_id AND t.recipient = tracking_events.recipient), '');
    DROP INDEX tracking_events_of;
    CREATE INDEX tracking_events_of ON tracking_events(sender, message_id, recipient);

    CREATE TABLE receipts_by_key (
        delivery_key   TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        queue_message  INTEGER,
        message_id     TEXT NOT NULL,
        sender         TEXT NOT NULL,
        subject        TEXT NOT NULL,
        final_delivery INTEGER NOT NULL,
        processed_at   INTEGER,
        dispatched_at  INTEGER,
        failed_at      INTEGER,
        PRIMARY KEY (delivery_key, recipient)
    );
    INSERT INTO receipts_by_key (delivery_key, recipient, message_id, sender, subject, final_delivery,
                                 processed_at, dispatched_at, failed_at)
        SELECT 'legacy ' || lower(sender) || ' ' || message_id, recipient, message_id, sender, subject,
               final_delivery, processed_at, dispatched_at, failed_at FROM receipts;
    DROP TABLE receipts;
    ALTER TABLE receipts_by_key RENAME TO receipts;
    CREATE INDEX receipts_queued ON receipts(queue_message, recipient) WHERE queue_message IS NOT NULL;

    CREATE TABLE mailbox_deliveries_by_key (
        delivery_key TEXT NOT NULL,
        recipient    TEXT NOT NULL,
        message_id   TEXT NOT NULL,
        delivered_at INTEGER NOT NULL,
        file         TEXT NOT NULL,
        sender       TEXT NOT NULL DEFAULT '',
        subject      TEXT NOT NULL DEFAULT '',
        kind         TEXT NOT NULL DEFAULT 'message',
        PRIMARY KEY (delivery_key, recipient)
    );
    INSERT INTO mailbox_deliveries_by_key (delivery_key, recipient, message_id, delivered_at, file, sender, subject, kind)
        SELECT 'legacy ' || lower(sender) || ' ' || message_id, recipient, message_id, delivered_at, file,
               sender, subject, kind FROM mailbox_deliveries ORDER BY rowid;
    DROP TABLE mailbox_deliveries;
    ALTER TABLE mailbox_deliveries_by_key RENAME TO mailbox_deliveries;
    CREATE INDEX mailbox_deliveries_message ON mailbox_deliveries(message_id, recipient);
    CREATE INDEX mailbox_deliveries_at ON mailbox_deliveries(delivered_at);

    -- A practice's referrals, one per Message-ID and sender (the documents keep their referral:
    -- dropping the old table sets their referral_id to NULL, so it is put back).
    CREATE TEMP TABLE document_referrals AS SELECT id, referral_id FROM documents WHERE referral_id IS NOT NULL;
    CREATE TABLE referrals_by_sender (
        id             INTEGER PRIMARY KEY,
        practice_id    INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        message_id     TEXT NOT NULL,
        way            TEXT NOT NULL CHECK (way IN ('sent', 'received')),
        direction      TEXT NOT NULL CHECK (direction IN ('transferring', 'receiving')),
        patient_id     TEXT NOT NULL,
        sender         TEXT NOT NULL,
        recipients     TEXT NOT NULL,
        subject        TEXT NOT NULL,
        sections       TEXT NOT NULL,
        encounter_note INTEGER NOT NULL,
        in_reply_to    TEXT,
        created_at     INTEGER NOT NULL,
        received_at    INTEGER,
        received_by    TEXT,
        UNIQUE (practice_id, message_id, way, sender)
    );
    INSERT INTO referrals_by_sender (id, practice_id, message_id, way, direction, patient_id, sender, recipients,
                                     subject, sections, encounter_note, in_reply_to, created_at, received_at,
                                     received_by)
        SELECT id, practice_id, message_id, way, direction, patient_id, sender, recipients, subject, sections,
               encounter_note, in_reply_to, created_at, received_at, received_by FROM referrals;
    DROP TABLE referrals;
    ALTER TABLE referrals_by_sender RENAME TO referrals;
    CREATE INDEX referrals_patient ON referrals(practice_id, patient_id);
    UPDATE documents SET referral_id = (SELECT d.referral_id FROM document_referrals d WHERE d.id = documents.id)
        WHERE id IN (SELECT id FROM document_referrals);
    DROP TABLE document_referrals;
    "#,
    // 13: PHI sealed under the KEK (store::fields): subjects, patient identifiers, recipients,
    // filenames and document hashes hold sealed BLOBs from now on. Patients are found, and
    // documents and attachments kept once, by keyed blind indexes. Rows from before are sealed by
    // the first `hisp serve` (it holds the KEK; SQL alone cannot).
    r#"
    ALTER TABLE referrals ADD COLUMN patient_index TEXT;
    ALTER TABLE documents ADD COLUMN patient_index TEXT;
    ALTER TABLE documents ADD COLUMN doc_key TEXT;
    ALTER TABLE received_attachments ADD COLUMN att_key TEXT;
    DROP INDEX referrals_patient;
    CREATE INDEX referrals_patient ON referrals(practice_id, patient_index);
    DROP INDEX documents_patient;
    CREATE INDEX documents_patient ON documents(practice_id, patient_index);
    CREATE UNIQUE INDEX documents_once ON documents(practice_id, message_id, way, doc_key);
    CREATE UNIQUE INDEX received_attachments_once ON received_attachments(message_id, recipient, att_key);
    "#,
    // 14: a node of millions of addresses. Every statement finds its rows by an index (the
    // `store::query_plans` test plans each one): a domain's addresses, keys and certificates; a
    // certificate's key and revocation; the references foreign keys check; the recipients left in
    // flight; a practice's messages by the domain of their sender or recipient (columns computed
    // from the address, so that an index can hold them). The directory finds addresses by the words they are made of
    // (FTS5, kept by triggers): "smith" finds dr.smith@a.test without reading every address;
    // the beginnings of 2 and 3 characters are indexed too ("u1" matches a million words).
    r#"
    CREATE INDEX addresses_domain ON addresses(domain_id, address);
    CREATE INDEX private_keys_domain ON private_keys(domain_id);
    CREATE INDEX private_keys_owner ON private_keys(owner);
    CREATE INDEX certificates_domain ON certificates(domain_id);
    CREATE INDEX certificates_key ON certificates(key_id);
    CREATE INDEX revocations_sha256 ON revocations(sha256);
    CREATE INDEX documents_referral ON documents(referral_id);
    CREATE INDEX received_attachments_recipient ON received_attachments(recipient, id);
    CREATE INDEX queue_in_flight ON queue_recipients(message_id) WHERE in_flight = 1;
    CREATE INDEX domains_practice ON domains(practice_id);
    ALTER TABLE tracked ADD COLUMN sender_domain TEXT
        GENERATED ALWAYS AS (lower(substr(sender, instr(sender, '@') + 1))) VIRTUAL;
    CREATE INDEX tracked_sender_domain ON tracked(sender_domain);
    ALTER TABLE mailbox_deliveries ADD COLUMN recipient_domain TEXT
        GENERATED ALWAYS AS (lower(substr(recipient, instr(recipient, '@') + 1))) VIRTUAL;
    CREATE INDEX mailbox_deliveries_recipient_domain ON mailbox_deliveries(recipient_domain) WHERE kind = 'message';
    CREATE VIRTUAL TABLE addresses_search USING fts5(
        address, content = 'addresses', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3'
    );
    CREATE TRIGGER addresses_search_inserted AFTER INSERT ON addresses BEGIN
        INSERT INTO addresses_search (rowid, address) VALUES (new.id, new.address);
    END;
    CREATE TRIGGER addresses_search_deleted AFTER DELETE ON addresses BEGIN
        INSERT INTO addresses_search (addresses_search, rowid, address) VALUES ('delete', old.id, old.address);
    END;
    CREATE TRIGGER addresses_search_updated AFTER UPDATE OF address ON addresses BEGIN
        INSERT INTO addresses_search (addresses_search, rowid, address) VALUES ('delete', old.id, old.address);
        INSERT INTO addresses_search (rowid, address) VALUES (new.id, new.address);
    END;
    INSERT INTO addresses_search (addresses_search) VALUES ('rebuild');
    "#,
    // 15: which configuration changed, not only that it did: after a change a worker forgets the
    // entries it touched (one address, one owner's certificates) instead of all it had read, so
    // certificate renewals across a million addresses do not send every worker back to the
    // database for everything. The count (migration 10) goes on; each change also logs its key.
    concat!(
        "CREATE TABLE config_changes (
             id         INTEGER PRIMARY KEY,
             generation INTEGER NOT NULL,
             kind       TEXT NOT NULL,
             key        TEXT
         );
         CREATE INDEX config_changes_generation ON config_changes(generation);",
        logs_changes_of!("domains", "domain", "name"),
        logs_changes_of!("addresses", "address", "address"),
        logs_changes_of!("private_keys", "key", "id"),
        logs_changes_of!("certificates", "certificates", "owner"),
        logs_changes_of!("anchors", "anchors"),
        logs_changes_of!("bundles", "anchors"),
        logs_changes_of!("bundle_anchors", "anchors"),
        logs_changes_of!("practices", "practice"),
        logs_changes_of!("proofing", "practice"),
    ),
    // 16: invitations (Refer & Share). The invitee's name, contact, date of birth and the code
    // are sealed under the KEK; the code is found by its keyed blind index (a stolen database
    // gives no way to test guesses offline), a practice's earlier invitations of the same
    // person by another. Each notice to send (the invitation, reminders) is a row of its own,
    // retried with backoff until sent or given up; the invitation shows how the latest went.
    r#"
    CREATE TABLE invitations (
        id            INTEGER PRIMARY KEY,
        practice_id   INTEGER NOT NULL REFERENCES practices(id),
        inviter       TEXT NOT NULL,
        relationship  TEXT NOT NULL,
        role          TEXT,
        name          BLOB NOT NULL,
        contact_kind  TEXT NOT NULL,
        contact       BLOB NOT NULL,
        contact_index TEXT NOT NULL,
        date_of_birth BLOB,
        code          BLOB NOT NULL,
        code_index    TEXT NOT NULL UNIQUE,
        state         TEXT NOT NULL,
        reminders     INTEGER NOT NULL DEFAULT 0,
        steps_done    INTEGER NOT NULL DEFAULT 0,
        next_due_at   INTEGER,
        dob_failures  INTEGER NOT NULL DEFAULT 0,
        notice        TEXT NOT NULL,
        replaces      INTEGER REFERENCES invitations(id),
        accepted_by   TEXT,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        closed_at     INTEGER,
        version       INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX invitations_practice ON invitations(practice_id, id);
    CREATE INDEX invitations_practice_state ON invitations(practice_id, state, id);
    CREATE INDEX invitations_recent ON invitations(practice_id, created_at);
    CREATE INDEX invitations_contact ON invitations(practice_id, contact_index) WHERE state = 'pending';
    CREATE INDEX invitations_due ON invitations(next_due_at) WHERE state = 'pending';
    CREATE INDEX invitations_replaces ON invitations(replaces);
    CREATE TABLE invitation_notices (
        id              INTEGER PRIMARY KEY,
        invitation_id   INTEGER NOT NULL REFERENCES invitations(id),
        kind            TEXT NOT NULL,
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        last_error      TEXT,
        sent_to         TEXT,
        sent_at         INTEGER,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX invitation_notices_due ON invitation_notices(next_attempt_at) WHERE state IN ('queued', 'retrying');
    CREATE INDEX invitation_notices_invitation ON invitation_notices(invitation_id, id);
    "#,
    // 17: accounts of people who accepted invitations (patients, and colleagues of practices
    // here or registered by the invitation), and the connections between a practice and the
    // practices and patients it works with. An account signs in with its e-mail address (sealed,
    // found by a blind index) and an argon2id password. A practice registered by an invitation
    // has no Direct domain yet; its profile (address, phone, EHR, NPI) is kept as JSON.
    r#"
    ALTER TABLE practices ADD COLUMN profile TEXT;
    CREATE TABLE accounts (
        id            INTEGER PRIMARY KEY,
        practice_id   INTEGER REFERENCES practices(id),
        role          TEXT NOT NULL,
        name          BLOB NOT NULL,
        email         BLOB NOT NULL,
        email_index   TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        invitation_id INTEGER REFERENCES invitations(id),
        created_at    INTEGER NOT NULL
    );
    CREATE INDEX accounts_practice ON accounts(practice_id);
    CREATE INDEX accounts_invitation ON accounts(invitation_id);
    CREATE TABLE connections (
        id               INTEGER PRIMARY KEY,
        practice_id      INTEGER NOT NULL REFERENCES practices(id),
        peer_practice_id INTEGER REFERENCES practices(id),
        patient_id       INTEGER REFERENCES accounts(id),
        invitation_id    INTEGER REFERENCES invitations(id),
        created_at       INTEGER NOT NULL,
        CHECK ((peer_practice_id IS NULL) <> (patient_id IS NULL))
    );
    CREATE UNIQUE INDEX connections_peer ON connections(practice_id, peer_practice_id)
        WHERE peer_practice_id IS NOT NULL;
    CREATE UNIQUE INDEX connections_patient ON connections(practice_id, patient_id) WHERE patient_id IS NOT NULL;
    CREATE INDEX connections_practice ON connections(practice_id, peer_practice_id);
    CREATE INDEX connections_of_peer ON connections(peer_practice_id);
    CREATE INDEX connections_of_patient ON connections(patient_id);
    CREATE INDEX connections_invitation ON connections(invitation_id);
    "#,
    // 18: the address book. A practice lists the members others may see (accounts, and Direct
    // addresses: users and shared inboxes), each with a label; an account keeps the listed
    // members of connected practices it chose as its contacts.
    r#"
    CREATE TABLE listings (
        id          INTEGER PRIMARY KEY,
        practice_id INTEGER NOT NULL REFERENCES practices(id),
        account_id  INTEGER REFERENCES accounts(id),
        address     TEXT,
        label       TEXT,
        created_at  INTEGER NOT NULL,
        CHECK ((account_id IS NULL) <> (address IS NULL))
    );
    CREATE UNIQUE INDEX listings_account ON listings(account_id) WHERE account_id IS NOT NULL;
    CREATE UNIQUE INDEX listings_address ON listings(address) WHERE address IS NOT NULL;
    CREATE INDEX listings_practice ON listings(practice_id);
    CREATE INDEX listings_of_account ON listings(account_id);
    CREATE TABLE contacts (
        id         INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        listing_id INTEGER NOT NULL REFERENCES listings(id),
        created_at INTEGER NOT NULL,
        UNIQUE (account_id, listing_id)
    );
    CREATE INDEX contacts_listing ON contacts(listing_id);
    "#,
    // 19: secure messages between accounts of connected parties, kept on this node only: the
    // subject, body, attachments' names and contents sealed under the KEK; one delivery row per
    // recipient (its mailbox), read or not. A message may be sent as the practice (its shared
    // address shown as the sender) and may answer another. A message a practice user sent by
    // Direct to someone with no Direct address is held (sealed) while they are invited, if the
    // practice says so, and put in their mailbox when they accept; its tracking says "held"
    // meanwhile (the table is rebuilt for the new state in its CHECK).
    r#"
    ALTER TABLE practices ADD COLUMN invite_unreachable INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE secure_messages (
        id             INTEGER PRIMARY KEY,
        sender_account INTEGER REFERENCES accounts(id),
        sender_address TEXT,
        as_address     TEXT,
        reply_to       INTEGER REFERENCES secure_messages(id),
        subject        BLOB NOT NULL,
        body           BLOB NOT NULL,
        created_at     INTEGER NOT NULL
    );
    CREATE INDEX secure_messages_sender ON secure_messages(sender_account, id);
    CREATE INDEX secure_messages_reply ON secure_messages(reply_to);
    CREATE TABLE secure_attachments (
        id           INTEGER PRIMARY KEY,
        message_id   INTEGER NOT NULL REFERENCES secure_messages(id),
        filename     BLOB NOT NULL,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        content      BLOB NOT NULL
    );
    CREATE INDEX secure_attachments_message ON secure_attachments(message_id);
    CREATE TABLE secure_deliveries (
        id         INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES secure_messages(id),
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        read_at    INTEGER,
        UNIQUE (account_id, message_id)
    );
    CREATE INDEX secure_deliveries_message ON secure_deliveries(message_id);
    CREATE TABLE held_messages (
        id            INTEGER PRIMARY KEY,
        practice_id   INTEGER NOT NULL REFERENCES practices(id),
        invitation_id INTEGER NOT NULL REFERENCES invitations(id),
        sender        TEXT NOT NULL,
        recipient     TEXT NOT NULL,
        message_id    TEXT NOT NULL,
        content       BLOB NOT NULL,
        created_at    INTEGER NOT NULL,
        account_id    INTEGER REFERENCES accounts(id),
        released_at   INTEGER,
        secure_id     INTEGER REFERENCES secure_messages(id),
        tracked_at    INTEGER,
        UNIQUE (message_id, sender, recipient)
    );
    CREATE INDEX held_messages_invitation ON held_messages(invitation_id);
    CREATE INDEX held_messages_account ON held_messages(account_id, secure_id);
    CREATE INDEX held_messages_practice ON held_messages(practice_id);
    CREATE INDEX held_messages_untracked ON held_messages(released_at) WHERE tracked_at IS NULL;
    CREATE INDEX held_messages_waiting ON held_messages(invitation_id) WHERE released_at IS NULL AND tracked_at IS NULL;
    CREATE INDEX held_messages_secure ON held_messages(secure_id);
    CREATE TABLE tracked_with_held (
        sender         TEXT NOT NULL,
        message_id     TEXT NOT NULL,
        recipient      TEXT NOT NULL,
        subject        TEXT NOT NULL,
        final_delivery INTEGER NOT NULL,
        status         TEXT NOT NULL CHECK (status IN
                           ('queued', 'sent', 'processed', 'dispatched', 'failed', 'timed-out', 'held')),
        submitted_at   INTEGER NOT NULL,
        sent_at        INTEGER,
        processed_at   INTEGER,
        dispatched_at  INTEGER,
        failed_at      INTEGER,
        detail         TEXT,
        notified_at    INTEGER,
        updated_at     INTEGER NOT NULL,
        sender_domain  TEXT GENERATED ALWAYS AS (lower(substr(sender, instr(sender, '@') + 1))) VIRTUAL,
        PRIMARY KEY (sender, message_id, recipient)
    );
    INSERT INTO tracked_with_held (sender, message_id, recipient, subject, final_delivery, status, submitted_at,
                                   sent_at, processed_at, dispatched_at, failed_at, detail, notified_at, updated_at)
        SELECT sender, message_id, recipient, subject, final_delivery, status, submitted_at,
               sent_at, processed_at, dispatched_at, failed_at, detail, notified_at, updated_at FROM tracked;
    DROP TABLE tracked;
    ALTER TABLE tracked_with_held RENAME TO tracked;
    CREATE INDEX tracked_waiting ON tracked(sent_at) WHERE status IN ('sent', 'processed');
    CREATE INDEX tracked_submitted ON tracked(submitted_at);
    CREATE INDEX tracked_message ON tracked(message_id);
    CREATE INDEX tracked_sender_domain ON tracked(sender_domain);
    "#,
    // 20: the portal. Accounts sign in (a failure count and a lock with an end, a TOTP secret
    // sealed, the last step used so a code works once; an account made by an admin has no
    // password until its one-time link sets one); a practice requires two factors or not; sessions
    // (their token stored as a SHA-256 digest, so the table gives no one a session), one-time
    // links to set a password, recovery codes (as keyed blind indexes).
    r#"
    ALTER TABLE accounts ADD COLUMN failed_signins INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN locked_until INTEGER;
    ALTER TABLE accounts ADD COLUMN totp_secret BLOB;
    ALTER TABLE accounts ADD COLUMN totp_enabled_at INTEGER;
    ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;
    ALTER TABLE practices ADD COLUMN two_factor_required INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE web_sessions (
        id           INTEGER PRIMARY KEY,
        token_hash   TEXT NOT NULL UNIQUE,
        account_id   INTEGER NOT NULL REFERENCES accounts(id),
        stage        TEXT NOT NULL CHECK (stage IN ('second-factor', 'enrol', 'signed-in')),
        csrf         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        seen_at      INTEGER NOT NULL
    );
    CREATE INDEX web_sessions_account ON web_sessions(account_id);
    CREATE INDEX web_sessions_seen ON web_sessions(seen_at);
    CREATE INDEX web_sessions_created ON web_sessions(created_at);
    CREATE TABLE account_links (
        id          INTEGER PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        account_id  INTEGER NOT NULL REFERENCES accounts(id),
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    );
    CREATE INDEX account_links_account ON account_links(account_id);
    CREATE TABLE recovery_codes (
        id          INTEGER PRIMARY KEY,
        account_id  INTEGER NOT NULL REFERENCES accounts(id),
        code_index  TEXT NOT NULL,
        used_at     INTEGER,
        UNIQUE (account_id, code_index)
    );
    "#,
    // 21: the Direct messages a portal account sent as its practice, for its sent items (their
    // content and tracking are the practice's, in `exchanges` and `tracked`).
    r#"
    CREATE TABLE portal_direct_sent (
        id          INTEGER PRIMARY KEY,
        account_id  INTEGER NOT NULL REFERENCES accounts(id),
        message_id  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        UNIQUE (account_id, message_id)
    );
    "#,
    // 22: a practice may turn invitations off (its members then cannot send any).
    r#"
    ALTER TABLE practices ADD COLUMN invitations_allowed INTEGER NOT NULL DEFAULT 1;
    "#,
    // 23: sharing documents by link (issue 24): the people outside the network a practice shares
    // with, their name, organization, e-mail and mobile sealed under the KEK, the e-mail also
    // as a keyed blind index (one contact per address and practice).
    r#"
    CREATE TABLE share_contacts (
        id           INTEGER PRIMARY KEY,
        practice_id  INTEGER NOT NULL REFERENCES practices(id),
        name         BLOB NOT NULL,
        organization BLOB,
        email        BLOB NOT NULL,
        email_index  TEXT NOT NULL,
        mobile       BLOB,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        UNIQUE (practice_id, email_index)
    );
    "#,
    // 24: how a practice shares documents by link: off until its admin sets it up; then the check
    // a contact passes before seeing one (none, an SMS code, a date of birth) and the roles of the
    // members who may share.
    r#"
    ALTER TABLE practices ADD COLUMN share_check TEXT NOT NULL DEFAULT 'off'
        CHECK (share_check IN ('off', 'none', 'sms', 'date-of-birth'));
    ALTER TABLE practices ADD COLUMN share_roles TEXT NOT NULL DEFAULT 'clinician admin';
    "#,
    // 25: documents shared by link. A share keeps its own copy of the document (sealed under the
    // KEK, its name sealed too), the check it was made with, and its link: the token's SHA-256
    // (never the token), when it was sent, when it was first used and the browser it is bound to
    // from then on (the SHA-256 of that browser's cookie), the SMS code as a keyed blind index,
    // failures and the lock, revocation. Each event is kept with a coarse description of the
    // client. A contact's date of birth (sealed) is what the date-of-birth check compares with;
    // a practice may let an expired link renew itself after the same check.
    r#"
    ALTER TABLE share_contacts ADD COLUMN date_of_birth BLOB;
    ALTER TABLE practices ADD COLUMN share_auto_renew INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE shares (
        id            INTEGER PRIMARY KEY,
        practice_id   INTEGER NOT NULL REFERENCES practices(id),
        contact_id    INTEGER NOT NULL REFERENCES share_contacts(id) ON DELETE CASCADE,
        shared_by     INTEGER NOT NULL REFERENCES accounts(id),
        source        TEXT NOT NULL,
        filename      BLOB NOT NULL,
        content_type  TEXT NOT NULL,
        size          INTEGER NOT NULL,
        sha256        BLOB NOT NULL,
        content       BLOB NOT NULL,
        check_kind    TEXT NOT NULL CHECK (check_kind IN ('none', 'sms', 'date-of-birth')),
        link_hash     TEXT NOT NULL UNIQUE,
        link_sent_at  INTEGER NOT NULL,
        first_used_at INTEGER,
        browser_hash  TEXT,
        code_index    TEXT,
        code_sent_at  INTEGER,
        codes_sent    INTEGER NOT NULL DEFAULT 0,
        failures      INTEGER NOT NULL DEFAULT 0,
        locked_at     INTEGER,
        revoked_at    INTEGER,
        renewal_asked_at INTEGER,
        viewed_at     INTEGER,
        created_at    INTEGER NOT NULL
    );
    CREATE INDEX shares_practice ON shares(practice_id, created_at);
    CREATE INDEX shares_contact ON shares(contact_id);
    CREATE INDEX shares_shared_by ON shares(shared_by);
    CREATE TABLE share_events (
        id       INTEGER PRIMARY KEY,
        share_id INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
        at       INTEGER NOT NULL,
        event    TEXT NOT NULL,
        client   TEXT NOT NULL
    );
    CREATE INDEX share_events_share ON share_events(share_id, at);
    "#,
    // 26: a received message's text, sealed, so an EHR reads it through the API
    // (GET /v1/messages/{id}) without IMAP.
    r#"
    ALTER TABLE mailbox_deliveries ADD COLUMN body BLOB;
    "#,
    // 27: webhooks (issue 25). An EHR's token registers HTTPS callbacks for its practice's events;
    // each event is written by a trigger in the very transaction that records what happened (an
    // outbox: nothing is lost to a crash between the two), and the node POSTs it, signed, retrying
    // until delivered or given up. Payloads hold ids, addresses and states only: no subject, no
    // patient, no file name.
    r#"
    CREATE TABLE webhooks (
        id          INTEGER PRIMARY KEY,
        practice_id INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        token_id    INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
        url         TEXT NOT NULL,
        events      TEXT NOT NULL,
        secret      BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        removed_at  INTEGER
    );
    CREATE INDEX webhooks_practice ON webhooks(practice_id) WHERE removed_at IS NULL;
    CREATE INDEX webhooks_token ON webhooks(token_id);
    CREATE TABLE webhook_deliveries (
        id           INTEGER PRIMARY KEY,
        webhook_id   INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event        TEXT NOT NULL,
        payload      TEXT NOT NULL,
        state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_at      INTEGER NOT NULL,
        last_status  INTEGER,
        last_error   TEXT,
        created_at   INTEGER NOT NULL,
        delivered_at INTEGER
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE state = 'pending';
    CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, id);
    CREATE TRIGGER webhook_message_received AFTER INSERT ON mailbox_deliveries WHEN NEW.kind = 'message'
    BEGIN
        INSERT INTO webhook_deliveries (webhook_id, event, payload, next_at, created_at)
        SELECT w.id, 'message.received',
               json_object('event', 'message.received', 'message_id', trim(NEW.message_id, '<>'),
                           'recipient', NEW.recipient, 'sender', NEW.sender, 'at', NEW.delivered_at),
               NEW.delivered_at, NEW.delivered_at
        FROM domains d JOIN webhooks w ON w.practice_id = d.practice_id AND w.removed_at IS NULL
        WHERE d.name = NEW.recipient_domain AND instr(w.events, ' message.received ') > 0;
    END;
    CREATE TRIGGER webhook_referral_received AFTER INSERT ON referrals WHEN NEW.way = 'received'
    BEGIN
        INSERT INTO webhook_deliveries (webhook_id, event, payload, next_at, created_at)
        SELECT w.id, 'referral.received',
               json_object('event', 'referral.received', 'referral_id', NEW.id,
                           'message_id', trim(NEW.message_id, '<>'), 'direction', NEW.direction,
                           'at', NEW.created_at),
               NEW.created_at, NEW.created_at
        FROM webhooks w
        WHERE w.practice_id = NEW.practice_id AND w.removed_at IS NULL
          AND instr(w.events, ' referral.received ') > 0;
    END;
    CREATE TRIGGER webhook_message_status AFTER INSERT ON tracking_events
        WHEN NEW.event IN ('processed', 'dispatched', 'failed', 'timed-out', 'dsn')
    BEGIN
        INSERT INTO webhook_deliveries (webhook_id, event, payload, next_at, created_at)
        SELECT w.id, CASE NEW.event WHEN 'dsn' THEN 'delivery.failed' ELSE 'message.status' END,
               CASE NEW.event
                   WHEN 'dsn' THEN json_object('event', 'delivery.failed', 'message_id', trim(NEW.message_id, '<>'),
                                               'sender', NEW.sender, 'recipient', NEW.recipient, 'at', NEW.at)
                   ELSE json_object('event', 'message.status', 'message_id', trim(NEW.message_id, '<>'),
                                    'sender', NEW.sender, 'recipient', NEW.recipient, 'status', NEW.event,
                                    'at', NEW.at)
               END,
               NEW.at, NEW.at
        FROM domains d JOIN webhooks w ON w.practice_id = d.practice_id AND w.removed_at IS NULL
        WHERE d.name = lower(substr(NEW.sender, instr(NEW.sender, '@') + 1))
          AND instr(w.events, CASE NEW.event WHEN 'dsn' THEN ' delivery.failed ' ELSE ' message.status ' END) > 0;
    END;
    "#,
    // 28: Idempotency-Key on the API's POSTs: the first answer to a key is kept for a day and
    // given again to a retry of the same request (sealed: it may name a contact).
    r#"
    CREATE TABLE api_idempotency (
        token_id       INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
        key            TEXT NOT NULL,
        request_sha256 TEXT NOT NULL,
        status         INTEGER,
        response       BLOB,
        created_at     INTEGER NOT NULL,
        PRIMARY KEY (token_id, key)
    );
    CREATE INDEX api_idempotency_created ON api_idempotency(created_at);
    "#,
    // 29: a sent message's delayed recipients are shown with the reason and the next attempt
    // (GET /v1/messages/{id}): found from the tracked Message-ID.
    r#"
    CREATE INDEX IF NOT EXISTS queue_messages_message_id ON queue_messages(message_id) WHERE direction = 'outbound';
    "#,
    // 30: the audit log holds no line break or terminal escape, whoever writes to it and whatever
    // a name or a reason held: each is written as \n, \r or \e, so `hisp audit` shows one line
    // per entry and no entry can forge another.
    r#"
    CREATE TRIGGER audit_log_one_line AFTER INSERT ON audit_log
        WHEN instr(NEW.subject || NEW.detail || NEW.actor, char(10)) > 0
          OR instr(NEW.subject || NEW.detail || NEW.actor, char(13)) > 0
          OR instr(NEW.subject || NEW.detail || NEW.actor, char(27)) > 0
    BEGIN
        UPDATE audit_log SET
            subject = replace(replace(replace(subject, char(10), '\n'), char(13), '\r'), char(27), '\e'),
            detail = replace(replace(replace(detail, char(10), '\n'), char(13), '\r'), char(27), '\e'),
            actor = replace(replace(replace(actor, char(10), '\n'), char(13), '\r'), char(27), '\e')
        WHERE rowid = NEW.rowid;
    END;
    UPDATE audit_log SET
        subject = replace(replace(replace(subject, char(10), '\n'), char(13), '\r'), char(27), '\e'),
        detail = replace(replace(replace(detail, char(10), '\n'), char(13), '\r'), char(27), '\e'),
        actor = replace(replace(replace(actor, char(10), '\n'), char(13), '\r'), char(27), '\e')
    WHERE instr(subject || detail || actor, char(10)) > 0 OR instr(subject || detail || actor, char(13)) > 0
       OR instr(subject || detail || actor, char(27)) > 0;
    "#,
    // 31: a referral that arrives is filed for the receiving practice's own patient. Each practice
    // keeps an index of its patients by what a C-CDA says of them (name, birth date, sex: a keyed
    // blind index) to its own identifier; the sender's identifier is kept apart, as the sender's.
    // A referral not matched keeps an empty patient_id (the column is NOT NULL).
    r#"
    CREATE TABLE patient_index (
        practice_id INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        key_index   TEXT NOT NULL,
        patient_id  BLOB NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (practice_id, key_index)
    );
    ALTER TABLE referrals ADD COLUMN sender_patient_id BLOB;
    "#,
    // 32: XDM packages. A document filed from one keeps its XDM metadata (sealed JSON: patient,
    // author, codes, title); each package that arrived or left is recorded, filed or refused with
    // the reason (sealed: it may quote the package's names).
    r#"
    ALTER TABLE documents ADD COLUMN xdm BLOB;
    CREATE TABLE xdm_packages (
        id          INTEGER PRIMARY KEY,
        practice_id INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        message_id  TEXT NOT NULL,
        way         TEXT NOT NULL CHECK (way IN ('sent', 'received')),
        filename    BLOB NOT NULL,
        sha256      TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('filed', 'refused')),
        reason      BLOB,
        documents   INTEGER NOT NULL,
        warnings    BLOB,
        created_at  INTEGER NOT NULL,
        UNIQUE (practice_id, message_id, way, sha256)
    );
    "#,
];
