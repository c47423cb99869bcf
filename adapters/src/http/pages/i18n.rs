//! The pages' words, per language: the language a request asks for ([`page_language`]) and
//! the strings of each page.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use serde::Deserialize;
use serde_json::{json, Value};

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

/// The notification center's words, per language. `{n}` is replaced by the client.
pub fn inbox_strings(lang: &str) -> Value {
    if lang == "fr" {
        json!({
            "title": "Notifications",
            "unread_zero": "Aucune notification non lue",
            "unread_one": "1 notification non lue",
            "unread_many": "{n} notifications non lues",
            "connecting": "Connexion…",
            "live": "En direct",
            "reconnecting": "Connexion perdue, nouvel essai…",
            "unauthorized": "Jeton invalide ou expiré : collez-en un nouveau.",
            "token_label": "Jeton d’accès",
            "connect": "Se connecter",
            "filter": "Afficher",
            "all": "Toutes",
            "unread": "Non lues",
            "read": "Lues",
            "mark_all": "Tout marquer comme lu",
            "mark_one": "Marquer comme lue",
            "empty": "Rien ici pour l’instant.",
        })
    } else {
        json!({
            "title": "Notifications",
            "unread_zero": "No unread notifications",
            "unread_one": "1 unread notification",
            "unread_many": "{n} unread notifications",
            "connecting": "Connecting…",
            "live": "Live",
            "reconnecting": "Connection lost, retrying…",
            "unauthorized": "Invalid or expired token: paste a new one.",
            "token_label": "Access token",
            "connect": "Connect",
            "filter": "Show",
            "all": "All",
            "unread": "Unread",
            "read": "Read",
            "mark_all": "Mark all as read",
            "mark_one": "Mark as read",
            "empty": "Nothing here yet.",
        })
    }
}

/// The dashboard's words, per language.
pub fn dashboard_strings(lang: &str) -> Value {
    if lang == "fr" {
        json!({
            "title": "Clairon — tableau de bord",
            "login_title": "Connexion opérateur",
            "api_key": "Clé d'API",
            "login": "Se connecter",
            "logout": "Se déconnecter",
            "bad_key": "Clé refusée.",
            "window": "Dernières 24 h",
            "deliveries": "Envois",
            "channel": "Canal",
            "total": "Total",
            "sent": "Envoyés",
            "success_rate": "Taux de succès",
            "p50": "Latence p50",
            "p95": "Latence p95",
            "dead_letters": "Envois morts",
            "no_dead": "Aucun envoi mort.",
            "notification": "Notification",
            "recipient": "Destinataire",
            "error": "Erreur",
            "retry": "Réessayer",
            "retried": "Remis en file",
            "retry_failed": "Échec",
            "jobs": "Tâches de fond",
            "job": "Tâche",
            "status": "Statut",
            "started": "Début",
            "duration": "Durée",
            "never": "jamais lancée",
            "queue": "File d'attente",
            "count": "Nombre",
            "oldest": "Plus ancien dû",
            "all_good": "Tout va bien",
            "attention": "À surveiller",
        })
    } else {
        json!({
            "title": "Clairon — dashboard",
            "login_title": "Operator sign-in",
            "api_key": "API key",
            "login": "Sign in",
            "logout": "Sign out",
            "bad_key": "Key refused.",
            "window": "Last 24 h",
            "deliveries": "Deliveries",
            "channel": "Channel",
            "total": "Total",
            "sent": "Sent",
            "success_rate": "Success rate",
            "p50": "p50 latency",
            "p95": "p95 latency",
            "dead_letters": "Dead letters",
            "no_dead": "No dead deliveries.",
            "notification": "Notification",
            "recipient": "Recipient",
            "error": "Error",
            "retry": "Retry",
            "retried": "Requeued",
            "retry_failed": "Failed",
            "jobs": "Background jobs",
            "job": "Job",
            "status": "Status",
            "started": "Started",
            "duration": "Duration",
            "never": "never run",
            "queue": "Queue",
            "count": "Count",
            "oldest": "Oldest due",
            "all_good": "All good",
            "attention": "Needs attention",
        })
    }
}
