//! Refer & Share: the practice network beyond Direct addresses. Invitations (by e-mail or fax,
//! with a code, reminders and, for patients, a date-of-birth check), their notices and the
//! schedule that reminds and expires them.

pub(crate) mod accept;
pub(crate) mod address_book;
pub(crate) mod channels;
pub(crate) mod code;
pub(crate) mod compose;
pub(crate) mod held;
pub(crate) mod invitations;
pub(crate) mod invitee;
pub(crate) mod messages;
pub(crate) mod notices;
pub(crate) mod npi;
pub(crate) mod password_mail;
pub(crate) mod schedule;
pub(crate) mod share_contacts;
pub(crate) mod share_link;
pub(crate) mod share_mail;
pub(crate) mod shares;
pub(crate) mod signin;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod webhooks;
