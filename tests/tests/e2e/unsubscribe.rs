//! One-click unsubscribe (RFC 8058, RFC 2369) end to end, with the real SMTP sink: every
//! non-`critical` email carries `List-Unsubscribe: <{CLAIRON_PUBLIC_URL}/unsubscribe/{token}>`
//! and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; a `POST` of that link switches the
//! email of that event type off for that recipient (only that one), again and again; a `GET`
//! shows a page in the recipient's language and changes nothing; a forged, altered or orphaned
//! link is a 404 that changes nothing.

use std::time::Duration;

use clairon_adapters::testing::ReceivedEmail;
use clairon_tests::{spawn_app_configured, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://notify.example.org/clairon";
const WAIT: Duration = Duration::from_secs(20);

async fn app() -> TestApp {
    spawn_app_configured(Options::default(), |s| s.public_url = PUBLIC_URL.into())
        .await
        .expect("SQLite is always available")
}

async fn register(app: &TestApp, id: &str, locale: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": format!("{id}@example.org"), "locale": locale,
                     "timezone": "America/Montreal" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

/// A planning event of `kind` (`assigned`, `modified`) for `artist`, on planning `planning`.
fn planning_event(event_id: &str, planning: &str, kind: &str, artist: &str) -> Value {
    let mut event = json!({
        "event_id": event_id, "planning_id": planning, "event": kind,
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": { "name": "Samir Nguyễn" }
        },
        "artist_ids": [artist], "coordinator_ids": []
    });
    if kind == "modified" {
        event["changes"] = json!({ "title": { "from": "Carmen", "to": "Carmen (reprise)" } });
    }
    event
}

/// Posts the event; returns the notification made for `artist`.
async fn post_event(app: &TestApp, event: &Value, artist: &str) -> Value {
    let answer = app.post_event(event).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["recipient_id"] == artist).cloned())
        .unwrap_or_else(|| panic!("a notification for {artist}: {}", answer.json))
}

async fn notify(app: &TestApp, recipient: &str, title: &str, priority: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": title, "body": "Salle B",
                     "priority": priority, "channels": ["email"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn email_titled<'a>(emails: &'a [ReceivedEmail], subject: &str) -> &'a ReceivedEmail {
    emails
        .iter()
        .find(|e| e.subject.as_deref() == Some(subject))
        .unwrap_or_else(|| panic!("an email {subject:?} among {}", emails.len()))
}

/// The link of an email's `List-Unsubscribe` header, without its angle brackets.
fn link_of(email: &ReceivedEmail) -> String {
    let header = email
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header");
    header
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .unwrap_or_else(|| panic!("<url> (RFC 2369): {header}"))
        .to_owned()
}

/// `/unsubscribe/{token}` of `link`, to call on the test app (whose public URL is not real).
fn local_path(link: &str) -> String {
    let token = link
        .strip_prefix(&format!("{PUBLIC_URL}/unsubscribe/"))
        .unwrap_or_else(|| panic!("below CLAIRON_PUBLIC_URL: {link}"));
    format!("/unsubscribe/{token}")
}

/// A one-click POST as a mail client sends it: no cookie, no key, the RFC 8058 body.
async fn one_click(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

async fn page(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let csp = response
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, csp, response.text().await.unwrap())
}

async fn preferences(app: &TestApp, recipient: &str) -> Value {
    let answer = app
        .get(&format!("/api/v1/recipients/{recipient}/preferences"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
}

#[tokio::test]
async fn a_normal_email_carries_the_one_click_headers_below_the_public_url_and_a_critical_one_none()
{
    // Arrange
    let app = app().await;
    register(&app, "artist-1", "fr").await;

    // Act
    let normal = notify(&app, "artist-1", "Répétition déplacée", "normal").await;
    let critical = notify(&app, "artist-1", "Salle évacuée", "critical").await;
    app.wait_for_delivery(&normal, "email", "sent", WAIT).await;
    app.wait_for_delivery(&critical, "email", "sent", WAIT)
        .await;

    // Assert
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(2, WAIT).await;
    let normal = email_titled(&emails, "Répétition déplacée");
    let link = link_of(normal);
    assert!(
        link.starts_with(&format!("{PUBLIC_URL}/unsubscribe/")),
        "the link is written below CLAIRON_PUBLIC_URL: {link}"
    );
    assert_eq!(
        normal.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "RFC 8058 §3.1"
    );
    for part in ["text/plain", "text/html"] {
        assert!(
            normal
                .part(part)
                .is_some_and(|p| p.replace("&#x2F;", "/").contains(&link)),
            "the {part} footer shows the link too"
        );
    }
    let critical = email_titled(&emails, "Salle évacuée");
    assert_eq!(
        critical.header("List-Unsubscribe"),
        None,
        "critical: no link"
    );
    assert_eq!(critical.header("List-Unsubscribe-Post"), None);
    assert!(
        !critical
            .part("text/plain")
            .unwrap()
            .contains("/unsubscribe/"),
        "nor in the footer"
    );
}

#[tokio::test]
async fn the_get_page_asks_in_the_recipients_language_and_changes_nothing() {
    let app = app().await;
    register(&app, "artist-1", "fr").await;
    let id = notify(&app, "artist-1", "Répétition", "normal").await;
    app.wait_for_delivery(&id, "email", "sent", WAIT).await;
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(1, WAIT).await;
    let path = local_path(&link_of(&emails[0]));
    let before = preferences(&app, "artist-1").await;

    // A scanner (or a person) follows the link, twice, asking for English.
    let (status, csp, html) = page(&app, &format!("{path}?lang=en")).await;
    page(&app, &path).await;

    assert_eq!(status, 200, "{html}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        html.contains("Me désabonner") && html.contains("« custom »"),
        "French, the recipient's language, naming the event type: {html}"
    );
    assert!(
        html.contains("<form method=\"post\">")
            && html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "a button that posts the one-click body: {html}"
    );
    assert_eq!(
        preferences(&app, "artist-1").await,
        before,
        "GET changed nothing"
    );
}

#[tokio::test]
async fn a_forged_altered_or_orphaned_link_is_a_404_that_changes_nothing() {
    let app = app().await;
    register(&app, "artist-1", "en").await;
    register(&app, "artist-2", "en").await;
    let first = notify(&app, "artist-1", "One", "normal").await;
    let second = notify(&app, "artist-2", "Two", "normal").await;
    app.wait_for_delivery(&first, "email", "sent", WAIT).await;
    app.wait_for_delivery(&second, "email", "sent", WAIT).await;
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(2, WAIT).await;
    let path = local_path(&link_of(email_titled(&emails, "One")));
    let orphan = local_path(&link_of(email_titled(&emails, "Two")));
    let before = preferences(&app, "artist-1").await;

    // One character of the tag changed; the tag cut; the payload swapped for another's.
    let mut altered = path.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let truncated = path[..path.len() - 5].to_owned();
    let (payload_1, _) = path.rsplit_once('.').unwrap();
    let (_, tag_2) = orphan.rsplit_once('.').unwrap();
    let swapped = format!("{payload_1}.{tag_2}");
    let erased = app
        .call(Method::DELETE, "/api/v1/recipients/artist-2", None)
        .await;
    assert_eq!(erased.status, 204, "{}", erased.json);

    for forged in [
        &altered,
        &truncated,
        &swapped,
        &orphan,
        &"/unsubscribe/x".to_owned(),
    ] {
        let (status, content_type, body) = one_click(&app, forged).await;
        assert_eq!(status, 404, "POST {forged}: {body}");
        assert_eq!(content_type, "application/problem+json", "POST {forged}");
        assert_eq!(page(&app, forged).await.0, 404, "GET {forged}");
    }
    assert_eq!(
        preferences(&app, "artist-1").await,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn the_one_click_post_turns_email_off_for_that_event_type_only_and_can_be_replayed() {
    // Arrange: an email of planning.assigned, and its link.
    let app = app().await;
    register(&app, "artist-1", "en").await;
    let assigned = post_event(
        &app,
        &planning_event("ev-1", "pl-1", "assigned", "artist-1"),
        "artist-1",
    )
    .await;
    let assigned_id = assigned["id"].as_str().unwrap();
    app.wait_for_delivery(assigned_id, "email", "sent", WAIT)
        .await;
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(1, WAIT).await;
    let path = local_path(&link_of(&emails[0]));

    // Act: the mail client's one-click POST, twice (a retry, a second click).
    let first = one_click(&app, &path).await;
    let again = one_click(&app, &path).await;

    // Assert: both answered 200 with a page, and only that event type's email is off.
    assert_eq!(first.0, 200, "{}", first.2);
    assert!(first.1.starts_with("text/html"), "{}", first.1);
    assert!(
        first
            .2
            .contains("You will no longer receive “planning.assigned” notifications by email"),
        "{}",
        first.2
    );
    assert_eq!(again.0, 200, "replayed: still 200 ({})", again.2);
    let prefs = preferences(&app, "artist-1").await;
    assert_eq!(
        prefs["event_types"],
        json!({ "planning.assigned": { "email": false } }),
        "that event type's email only: {prefs}"
    );
    assert_ne!(prefs["channels"]["email"], json!(false), "{prefs}");

    // A new assignment: in the inbox, not by email; a change of planning: by email still.
    let assigned_again = post_event(
        &app,
        &planning_event("ev-2", "pl-2", "assigned", "artist-1"),
        "artist-1",
    )
    .await;
    let modified = post_event(
        &app,
        &planning_event("ev-3", "pl-1", "modified", "artist-1"),
        "artist-1",
    )
    .await;
    let id = assigned_again["id"].as_str().unwrap();
    app.wait_for_delivery(id, "in_app", "sent", WAIT).await;
    let skipped = app.wait_for_delivery(id, "email", "skipped", WAIT).await;
    assert!(
        skipped.to_string().contains("opted_out"),
        "the skip names the opt-out: {skipped}"
    );
    app.wait_for_delivery(modified["id"].as_str().unwrap(), "email", "sent", WAIT)
        .await;
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(2, WAIT).await;
    assert_eq!(
        emails.len(),
        2,
        "the first assignment and the change, no more"
    );
}
