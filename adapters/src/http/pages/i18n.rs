//! The pages' words: one table per language ([`FR`], [`EN`]) shared by the notification center,
//! the dashboard and the unsubscribe page, the language a request asks for ([`page_language`]), and the words each
//! page takes from the table ([`strings`]). A key both pages use with different words is
//! prefixed with the page (`inbox.title`, `dashboard.title`); the page sees it unprefixed.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
struct PageParams {
    lang: Option<String>,
}

/// The page's language: `?lang=fr|en`, else the first of `fr`/`en` in `Accept-Language`,
/// else `en`.
pub fn page_language(req: &HttpRequest) -> &'static str {
    let asked = web::Query::<PageParams>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().lang);
    match asked.as_deref() {
        Some("fr") => return "fr",
        Some("en") => return "en",
        _ => {}
    }
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The first of fr/en the browser lists wins.
    let fr = accept.to_ascii_lowercase().find("fr");
    let en = accept.to_ascii_lowercase().find("en");
    match (fr, en) {
        (Some(f), Some(e)) if f < e => "fr",
        (Some(_), None) => "fr",
        _ => "en",
    }
}

/// Every word of the pages, in French.
pub const FR: &[(&str, &str)] = &[
    // The notification center (`/inbox`).
    ("inbox.title", "Notifications"),
    ("unread_zero", "Aucune notification non lue"),
    ("unread_one", "1 notification non lue"),
    ("unread_many", "{n} notifications non lues"),
    ("connecting", "Connexion…"),
    ("live", "En direct"),
    ("reconnecting", "Connexion perdue, nouvel essai…"),
    (
        "unauthorized",
        "Jeton invalide ou expiré : collez-en un nouveau.",
    ),
    ("token_label", "Jeton d’accès"),
    ("connect", "Se connecter"),
    ("filter", "Afficher"),
    ("all", "Toutes"),
    ("unread", "Non lues"),
    ("read", "Lues"),
    ("mark_all", "Tout marquer comme lu"),
    ("push_enable", "M’avertir dans ce navigateur"),
    ("push_enabled", "Ce navigateur recevra les notifications."),
    ("push_denied", "Les notifications sont refusées pour ce site dans ce navigateur."),
    ("push_unsupported", "Ce navigateur ne permet pas les notifications push."),
    ("push_failed", "L’abonnement a échoué :"),
    ("mark_one", "Marquer comme lue"),
    ("empty", "Rien ici pour l’instant."),
    ("open", "Ouvrir"),
    ("unread_marker", "Non lue"),
    ("preferences", "Préférences"),
    ("prefs_title", "Mes préférences de notification"),
    ("channels", "Canaux"),
    ("channel_in_app", "Centre de notifications"),
    ("channel_email", "Courriel"),
    ("channel_telegram", "Telegram"),
    ("always_on", "toujours actif : c’est votre historique"),
    ("event_types", "Types d’événement"),
    ("event_type", "Type d’événement"),
    ("add_event_type", "Autre type (ex. project.*)"),
    ("add", "Ajouter"),
    ("quiet_hours", "Heures calmes"),
    ("quiet_enabled", "Ni courriel ni Telegram entre"),
    ("quiet_and", "et"),
    ("consents", "Consentements"),
    ("no_consents", "Aucun consentement enregistré."),
    ("granted", "accordé"),
    ("revoked", "retiré"),
    ("save", "Enregistrer"),
    ("saved", "Préférences enregistrées."),
    ("save_failed", "Non enregistré :"),
    // The one-click unsubscribe page (`/unsubscribe/{token}`).
    ("unsubscribe.title", "Se désabonner"),
    (
        "unsubscribe.question",
        "Ne plus recevoir par courriel les notifications « {type} » ?",
    ),
    (
        "unsubscribe.note",
        "Elles resteront dans votre centre de notifications, et les messages critiques vous parviendront toujours.",
    ),
    ("unsubscribe.confirm", "Me désabonner"),
    ("unsubscribe.done_title", "C’est fait"),
    (
        "unsubscribe.done",
        "Vous ne recevrez plus par courriel les notifications « {type} ».",
    ),
    // The dashboard (`/admin`).
    ("dashboard.title", "Clairon — tableau de bord"),
    ("login_title", "Connexion opérateur"),
    ("api_key", "Clé d'API"),
    ("login", "Se connecter"),
    ("logout", "Se déconnecter"),
    ("bad_key", "Clé refusée."),
    ("window", "Dernières 24 h"),
    ("deliveries", "Envois"),
    ("channel", "Canal"),
    ("total", "Total"),
    ("sent", "Envoyés"),
    ("success_rate", "Taux de succès"),
    ("p50", "Latence p50"),
    ("p95", "Latence p95"),
    ("dead_letters", "Envois morts"),
    ("no_dead", "Aucun envoi mort."),
    ("notification", "Notification"),
    ("recipient", "Destinataire"),
    ("error", "Erreur"),
    ("retry", "Réessayer"),
    ("retried", "Remis en file"),
    ("retry_failed", "Échec"),
    ("jobs", "Tâches de fond"),
    ("job", "Tâche"),
    ("status", "Statut"),
    ("started", "Début"),
    ("duration", "Durée"),
    ("never", "jamais lancée"),
    ("queue", "File d'attente"),
    ("count", "Nombre"),
    ("oldest", "Plus ancien dû"),
    ("all_good", "Tout va bien"),
    ("attention", "À surveiller"),
    // The health logs (issue 13): job tabs, the night's verdict, the queue's due/later split.
    ("tab_scheduled", "Tâches planifiées"),
    ("tab_syncs", "Synchronisations"),
    ("health_since", "Depuis hier 18:00"),
    ("health_ok", "tout s'est bien passé"),
    ("health_failed", "à revoir :"),
    ("health_none", "aucune exécution"),
    ("runs", "Exécutions"),
    ("trigger", "Déclencheur"),
    ("mean", "Durée moyenne"),
    ("p95_duration", "Durée p95"),
    ("last_run", "Dernière"),
    ("stats", "Statistiques"),
    ("no_syncs", "Aucune synchronisation signalée."),
    ("due_now", "Dus maintenant"),
    ("later", "Prévus plus tard"),
    ("pending", "en attente"),
    ("skipped", "Ignorés"),
    // Routing (issue 11): the rules in force, and why each channel of a notification was used.
    ("routing", "Règles de routage"),
    ("rules_version", "version"),
    ("rules_builtin", "règles intégrées"),
    ("event", "Événement"),
    ("topics", "Sujets"),
    ("channels", "Canaux"),
    ("priority", "Priorité"),
    ("any", "tous"),
    ("why", "Pourquoi ce canal ?"),
    ("why_lookup", "Notification (id)"),
    ("why_show", "Afficher"),
    ("why_not_found", "Aucune notification avec cet id."),
    ("reason", "Raison"),
    ("next_attempt", "Prochain essai"),
];

/// Every word of the pages, in English.
pub const EN: &[(&str, &str)] = &[
    // The notification center (`/inbox`).
    ("inbox.title", "Notifications"),
    ("unread_zero", "No unread notifications"),
    ("unread_one", "1 unread notification"),
    ("unread_many", "{n} unread notifications"),
    ("connecting", "Connecting…"),
    ("live", "Live"),
    ("reconnecting", "Connection lost, retrying…"),
    ("unauthorized", "Invalid or expired token: paste a new one."),
    ("token_label", "Access token"),
    ("connect", "Connect"),
    ("filter", "Show"),
    ("all", "All"),
    ("unread", "Unread"),
    ("read", "Read"),
    ("mark_all", "Mark all as read"),
    ("push_enable", "Notify me in this browser"),
    ("push_enabled", "This browser will get notifications."),
    (
        "push_denied",
        "Notifications are blocked for this site in this browser.",
    ),
    (
        "push_unsupported",
        "This browser cannot receive push notifications.",
    ),
    ("push_failed", "Subscribing failed:"),
    ("mark_one", "Mark as read"),
    ("empty", "Nothing here yet."),
    ("open", "Open"),
    ("unread_marker", "Unread"),
    ("preferences", "Preferences"),
    ("prefs_title", "My notification preferences"),
    ("channels", "Channels"),
    ("channel_in_app", "Notification center"),
    ("channel_email", "Email"),
    ("channel_telegram", "Telegram"),
    ("always_on", "always on: it is your record"),
    ("event_types", "Event types"),
    ("event_type", "Event type"),
    ("add_event_type", "Another type (e.g. project.*)"),
    ("add", "Add"),
    ("quiet_hours", "Quiet hours"),
    ("quiet_enabled", "No email or Telegram between"),
    ("quiet_and", "and"),
    ("consents", "Consents"),
    ("no_consents", "No consent recorded."),
    ("granted", "granted"),
    ("revoked", "revoked"),
    ("save", "Save"),
    ("saved", "Preferences saved."),
    ("save_failed", "Not saved:"),
    // The one-click unsubscribe page (`/unsubscribe/{token}`).
    ("unsubscribe.title", "Unsubscribe"),
    (
        "unsubscribe.question",
        "Stop receiving “{type}” notifications by email?",
    ),
    (
        "unsubscribe.note",
        "They stay in your notification center, and critical messages still reach you.",
    ),
    ("unsubscribe.confirm", "Unsubscribe me"),
    ("unsubscribe.done_title", "Done"),
    (
        "unsubscribe.done",
        "You will no longer receive “{type}” notifications by email.",
    ),
    // The dashboard (`/admin`).
    ("dashboard.title", "Clairon — dashboard"),
    ("login_title", "Operator sign-in"),
    ("api_key", "API key"),
    ("login", "Sign in"),
    ("logout", "Sign out"),
    ("bad_key", "Key refused."),
    ("window", "Last 24 h"),
    ("deliveries", "Deliveries"),
    ("channel", "Channel"),
    ("total", "Total"),
    ("sent", "Sent"),
    ("success_rate", "Success rate"),
    ("p50", "p50 latency"),
    ("p95", "p95 latency"),
    ("dead_letters", "Dead letters"),
    ("no_dead", "No dead deliveries."),
    ("notification", "Notification"),
    ("recipient", "Recipient"),
    ("error", "Error"),
    ("retry", "Retry"),
    ("retried", "Requeued"),
    ("retry_failed", "Failed"),
    ("jobs", "Background jobs"),
    ("job", "Job"),
    ("status", "Status"),
    ("started", "Started"),
    ("duration", "Duration"),
    ("never", "never run"),
    ("queue", "Queue"),
    ("count", "Count"),
    ("oldest", "Oldest due"),
    ("all_good", "All good"),
    ("attention", "Needs attention"),
    // The health logs (issue 13): job tabs, the night's verdict, the queue's due/later split.
    ("tab_scheduled", "Scheduled tasks"),
    ("tab_syncs", "Syncs"),
    ("health_since", "Since yesterday 18:00"),
    ("health_ok", "everything went well"),
    ("health_failed", "went wrong:"),
    ("health_none", "no runs"),
    ("runs", "Runs"),
    ("trigger", "Trigger"),
    ("mean", "Mean duration"),
    ("p95_duration", "p95 duration"),
    ("last_run", "Last"),
    ("stats", "Stats"),
    ("no_syncs", "No sync reported."),
    ("due_now", "Due now"),
    ("later", "Scheduled for later"),
    ("pending", "pending"),
    ("skipped", "Skipped"),
    // Routing (issue 11): the rules in force, and why each channel of a notification was used.
    ("routing", "Routing rules"),
    ("rules_version", "version"),
    ("rules_builtin", "built-in rules"),
    ("event", "Event"),
    ("topics", "Topics"),
    ("channels", "Channels"),
    ("priority", "Priority"),
    ("any", "any"),
    ("why", "Why this channel?"),
    ("why_lookup", "Notification (id)"),
    ("why_show", "Show"),
    ("why_not_found", "No notification has this id."),
    ("reason", "Reason"),
    ("next_attempt", "Next attempt"),
];

/// A page, and the keys of the table it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/inbox`, the notification center (`{n}` in its words is replaced by its script).
    Inbox,
    /// `/admin`, the dashboard.
    Dashboard,
    /// `/unsubscribe/{token}`, the one-click unsubscribe page (`{type}` in its words is
    /// replaced by the event type).
    Unsubscribe,
}

impl Page {
    fn prefix(self) -> &'static str {
        match self {
            Self::Inbox => "inbox",
            Self::Dashboard => "dashboard",
            Self::Unsubscribe => "unsubscribe",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Inbox => &[
                "title",
                "unread_zero",
                "unread_one",
                "unread_many",
                "connecting",
                "live",
                "reconnecting",
                "unauthorized",
                "token_label",
                "connect",
                "filter",
                "all",
                "unread",
                "read",
                "mark_all",
                "push_enable",
                "push_enabled",
                "push_denied",
                "push_unsupported",
                "push_failed",
                "mark_one",
                "empty",
                "open",
                "unread_marker",
                "preferences",
                "prefs_title",
                "channels",
                "channel_in_app",
                "channel_email",
                "channel_telegram",
                "always_on",
                "event_types",
                "event_type",
                "add_event_type",
                "add",
                "quiet_hours",
                "quiet_enabled",
                "quiet_and",
                "consents",
                "no_consents",
                "granted",
                "revoked",
                "save",
                "saved",
                "save_failed",
            ],
            Self::Unsubscribe => &["title", "question", "note", "confirm", "done_title", "done"],
            Self::Dashboard => &[
                "title",
                "login_title",
                "api_key",
                "login",
                "logout",
                "bad_key",
                "window",
                "deliveries",
                "channel",
                "total",
                "sent",
                "success_rate",
                "p50",
                "p95",
                "dead_letters",
                "no_dead",
                "notification",
                "recipient",
                "error",
                "retry",
                "retried",
                "retry_failed",
                "jobs",
                "job",
                "status",
                "started",
                "duration",
                "never",
                "queue",
                "count",
                "oldest",
                "all_good",
                "attention",
                "tab_scheduled",
                "tab_syncs",
                "health_since",
                "health_ok",
                "health_failed",
                "health_none",
                "runs",
                "trigger",
                "mean",
                "p95_duration",
                "last_run",
                "stats",
                "no_syncs",
                "due_now",
                "later",
                "pending",
                "skipped",
                "routing",
                "rules_version",
                "rules_builtin",
                "event",
                "topics",
                "channels",
                "priority",
                "any",
                "why",
                "why_lookup",
                "why_show",
                "why_not_found",
                "reason",
                "next_attempt",
            ],
        }
    }
}

/// The table of `lang` (`fr`; anything else: English).
fn table(lang: &str) -> &'static [(&'static str, &'static str)] {
    if lang == "fr" {
        FR
    } else {
        EN
    }
}

/// The words of `page` in `lang`, by the keys its template and script use.
pub fn strings(lang: &str, page: Page) -> Value {
    let table = table(lang);
    let word = |key: &str| table.iter().find(|(k, _)| *k == key).map(|(_, w)| *w);
    let words: Map<String, Value> = page
        .keys()
        .iter()
        .map(|key| {
            let prefixed = format!("{}.{key}", page.prefix());
            let found = word(&prefixed).or_else(|| word(key)).unwrap_or(key);
            ((*key).to_owned(), Value::from(found))
        })
        .collect();
    Value::Object(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_of_every_page_is_in_both_languages() {
        for page in [Page::Inbox, Page::Dashboard, Page::Unsubscribe] {
            for table in [FR, EN] {
                for key in page.keys() {
                    let prefixed = format!("{}.{key}", page.prefix());
                    assert!(
                        table.iter().any(|(k, _)| *k == prefixed || k == key),
                        "{key} of {page:?}"
                    );
                }
            }
        }
        assert_eq!(FR.len(), EN.len());
    }

    #[test]
    fn a_page_sees_its_own_title_unprefixed() {
        assert_eq!(strings("fr", Page::Inbox)["title"], "Notifications");
        assert_eq!(
            strings("en", Page::Dashboard)["title"],
            "Clairon — dashboard"
        );
        assert_eq!(strings("en", Page::Dashboard)["retry"], "Retry");
        assert!(strings("en", Page::Inbox).get("retry").is_none());
    }
}
