//! `FrankensteinTelegramSender` against a local stand-in for the Telegram Bot API: the
//! `sendMessage` requests it makes, and how it classifies the API's answers. Also checks that the
//! stand-in itself refuses what the real Bot API refuses, by calling it directly.
#![cfg(feature = "test-support")]

use std::time::Duration;

use clairon_adapters::channels::FrankensteinTelegramSender;
use clairon_adapters::testing::{StubChatId, TelegramStub};
use clairon_application::ports::{SendOutcome, TelegramButton, TelegramMessage, TelegramSender};
use clairon_domain::{DeliveryId, TelegramChatId};
use serde_json::{json, Value};

const TOKEN: &str = "123456789:AAF-test_token-Secret";
const HTML: &str = "<b>Répétition</b> — <i>Carmen</i> &amp; <a href=\"https://clairon.example/p/7?a=1&amp;b=2\">Opéra</a> &lt;salle 2&gt;";

fn message(chat_id: &str, button: bool) -> TelegramMessage {
    TelegramMessage {
        delivery_id: DeliveryId::parse("0190a1b2-0000-7000-8000-000000000007").unwrap(),
        chat_id: TelegramChatId::parse(chat_id).unwrap(),
        html: HTML.to_owned(),
        button: button.then(|| TelegramButton {
            label: "Voir le planning".to_owned(),
            url: "https://clairon.example/notifications/42".to_owned(),
        }),
    }
}

async fn stub_and_sender() -> (TelegramStub, FrankensteinTelegramSender) {
    let stub = TelegramStub::start(TOKEN).await;
    let sender = FrankensteinTelegramSender::new(&stub.base_url(), TOKEN);
    (stub, sender)
}

async fn post_raw(stub: &TelegramStub, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/sendMessage", stub.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_message_goes_out_as_html_with_its_button_and_comes_back_with_its_message_id() {
    let (stub, sender) = stub_and_sender().await;

    let first = sender.send(&message("424242", true)).await;
    let second = sender.send(&message("424242", false)).await;

    assert_eq!(
        first,
        SendOutcome::Sent {
            provider_message_id: "1".to_owned()
        }
    );
    assert_eq!(
        second,
        SendOutcome::Sent {
            provider_message_id: "2".to_owned()
        }
    );
    let received = stub.messages();
    assert_eq!(received.len(), 2, "refused: {:?}", stub.rejected());
    assert_eq!(received[0].chat_id, StubChatId::Integer(424_242));
    assert_eq!(received[0].parse_mode.as_deref(), Some("HTML"));
    assert_eq!(received[0].text, HTML);
    assert_eq!(
        received[0].visible_text,
        "Répétition — Carmen & Opéra <salle 2>"
    );
    assert_eq!(
        received[0].reply_markup,
        Some(json!({"inline_keyboard": [[{
            "text": "Voir le planning",
            "url": "https://clairon.example/notifications/42",
        }]]}))
    );
    assert_eq!(
        received[0].body["link_preview_options"]["is_disabled"],
        true
    );
    assert_eq!(received[1].reply_markup, None);
    assert!(stub.rejected().is_empty());
}

#[tokio::test]
async fn a_channel_username_is_sent_as_a_string_chat_id() {
    let (stub, sender) = stub_and_sender().await;

    let outcome = sender.send(&message("@clairon_annonces", false)).await;

    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    assert_eq!(
        stub.messages()[0].chat_id,
        StubChatId::Text("@clairon_annonces".to_owned())
    );
}

#[tokio::test]
async fn a_429_is_rate_limited_for_the_seconds_the_api_asks() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(429, "Too Many Requests: retry after 7", Some(7));

    let outcome = sender.send(&message("424242", false)).await;

    assert_eq!(
        outcome,
        SendOutcome::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
    assert_eq!(stub.failed_attempts().len(), 1);
    assert!(stub.messages().is_empty());
}

#[tokio::test]
async fn a_429_without_retry_after_waits_one_second() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(429, "Too Many Requests", None);

    let outcome = sender.send(&message("424242", false)).await;

    assert_eq!(
        outcome,
        SendOutcome::RateLimited {
            retry_after: Duration::from_secs(1)
        }
    );
}

#[tokio::test]
async fn a_user_who_blocked_the_bot_is_a_permanent_failure() {
    let (stub, sender) = stub_and_sender().await;
    stub.block_chat("777");

    let outcome = sender.send(&message("777", false)).await;

    match outcome {
        SendOutcome::Permanent(reason) => {
            assert!(reason.contains("bot was blocked by the user"), "{reason}");
            assert!(reason.contains("403"), "{reason}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(stub.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_chat_is_a_permanent_failure_and_other_chats_still_get_through() {
    let (stub, sender) = stub_and_sender().await;
    stub.unknown_chat("-100200300");

    let lost = sender.send(&message("-100200300", false)).await;
    let fine = sender.send(&message("424242", false)).await;

    match lost {
        SendOutcome::Permanent(reason) => assert!(reason.contains("chat not found"), "{reason}"),
        other => panic!("expected Permanent, got {other:?}"),
    }
    assert!(matches!(fine, SendOutcome::Sent { .. }), "{fine:?}");
}

#[tokio::test]
async fn a_server_error_is_transient_and_the_next_try_goes_through() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(500, "Internal Server Error", None);

    let failed = sender.send(&message("424242", false)).await;
    let retried = sender.send(&message("424242", false)).await;

    match failed {
        SendOutcome::Transient(reason) => assert!(reason.contains("500"), "{reason}"),
        other => panic!("expected Transient, got {other:?}"),
    }
    assert_eq!(
        retried,
        SendOutcome::Sent {
            provider_message_id: "1".to_owned()
        }
    );
}

#[tokio::test]
async fn an_unreachable_api_is_transient_and_the_error_does_not_leak_the_token() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender = FrankensteinTelegramSender::new(&format!("http://127.0.0.1:{port}"), TOKEN);

    let outcome = sender.send(&message("424242", false)).await;

    match outcome {
        SendOutcome::Transient(reason) => {
            assert!(!reason.contains("Secret"), "{reason}");
            assert!(!reason.contains("123456789"), "{reason}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_the_stub_says_not_found() {
    let stub = TelegramStub::start(TOKEN).await;
    let sender = FrankensteinTelegramSender::new(&stub.base_url(), "987654321:AAF-other-token");

    let outcome = sender.send(&message("424242", false)).await;

    match outcome {
        SendOutcome::Permanent(reason) => {
            assert!(reason.contains("Not Found"), "{reason}");
            assert!(!reason.contains("other-token"), "{reason}");
        }
        other => panic!("expected Permanent, got {other:?}"),
    }
    let rejected = stub.rejected();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].starts_with("404 Not Found"), "{rejected:?}");
}

#[tokio::test]
async fn the_debug_form_of_the_sender_hides_the_token() {
    let sender =
        FrankensteinTelegramSender::new(FrankensteinTelegramSender::DEFAULT_API_BASE_URL, TOKEN);

    let debug = format!("{sender:?}");

    assert!(!debug.contains("Secret"), "{debug}");
    assert!(debug.contains("https://api.telegram.org"), "{debug}");
}

#[actix_web::test]
async fn the_stub_also_runs_under_an_actix_runtime() {
    let (stub, sender) = stub_and_sender().await;

    let outcome = sender.send(&message("424242", false)).await;

    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    assert_eq!(
        stub.wait_for_messages(1, Duration::from_secs(5))
            .await
            .len(),
        1
    );
    stub.stop().await;
}

#[tokio::test]
async fn the_stub_refuses_a_tag_telegram_does_not_support() {
    let stub = TelegramStub::start(TOKEN).await;

    let (status, body) = post_raw(
        &stub,
        json!({"chat_id": 1, "text": "<div>Répétition</div>", "parse_mode": "HTML"}),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(body["ok"], false);
    assert_eq!(body["error_code"], 400);
    let description = body["description"].as_str().unwrap();
    assert!(
        description.starts_with("Bad Request: can't parse entities: Unsupported start tag \"div\""),
        "{description}"
    );
    assert!(stub.messages().is_empty());
    assert_eq!(stub.rejected().len(), 1);
}

#[tokio::test]
async fn the_stub_refuses_entities_telegram_does_not_know_and_bare_ampersands() {
    let stub = TelegramStub::start(TOKEN).await;

    for text in ["Carmen&nbsp;Opéra", "Carmen & Opéra", "<b>Carmen</b"] {
        let (status, body) = post_raw(
            &stub,
            json!({"chat_id": 1, "text": text, "parse_mode": "HTML"}),
        )
        .await;

        assert_eq!(status, 400, "{text:?} → {body}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .starts_with("Bad Request: can't parse entities: "),
            "{text:?} → {body}"
        );
    }
    assert!(stub.messages().is_empty());
    assert_eq!(stub.rejected().len(), 3);
}

#[tokio::test]
async fn the_stub_accepts_plain_text_without_a_parse_mode_and_answers_like_the_bot_api() {
    let stub = TelegramStub::start(TOKEN).await;

    let (status, body) = post_raw(&stub, json!({"chat_id": "55", "text": "1 < 2 & 3 > 2"})).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["result"]["message_id"], 1);
    assert_eq!(body["result"]["chat"], json!({"id": 55, "type": "private"}));
    assert_eq!(body["result"]["text"], "1 < 2 & 3 > 2");
    assert!(body["result"]["date"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(
        stub.messages()[0].chat_id,
        StubChatId::Text("55".to_owned())
    );
}

#[tokio::test]
async fn the_stub_refuses_malformed_requests_with_the_bot_api_descriptions() {
    let stub = TelegramStub::start(TOKEN).await;
    let too_long = "a".repeat(4097);
    let cases = [
        (json!({"text": "hi"}), "Bad Request: chat_id is empty"),
        (json!({"chat_id": 1, "text": "  "}), "Bad Request: message text is empty"),
        (json!({"chat_id": 1, "text": too_long}), "Bad Request: message is too long"),
        (
            json!({"chat_id": 1, "text": "hi", "parse_mode": "html5"}),
            "Bad Request: unsupported parse_mode",
        ),
        (
            json!({"chat_id": 1, "text": "hi", "reply_markup": {"inline_keyboard": [{"text": "x", "url": "https://x.example"}]}}),
            "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays",
        ),
        (
            json!({"chat_id": 1, "text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "Open"}]]}}),
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed",
        ),
        (
            json!({"chat_id": 1, "text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "Open", "url": "ftp://x.example"}]]}}),
            "Bad Request: inline keyboard button URL 'ftp://x.example' is invalid",
        ),
    ];

    for (body, expected) in cases {
        let (status, answer) = post_raw(&stub, body.clone()).await;

        assert_eq!(status, 400, "{body} → {answer}");
        let description = answer["description"].as_str().unwrap();
        assert!(description.starts_with(expected), "{body} → {description}");
    }
    assert!(stub.messages().is_empty());
}

#[tokio::test]
async fn the_stub_answers_not_found_for_another_token_or_method() {
    let stub = TelegramStub::start(TOKEN).await;
    let client = reqwest::Client::new();

    for path in [
        "/bot1:other/sendMessage".to_owned(),
        format!("/bot{TOKEN}/getMe"),
    ] {
        let response = client
            .post(format!("{}{path}", stub.base_url()))
            .json(&json!({"chat_id": 1, "text": "hi"}))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"ok": false, "error_code": 404, "description": "Not Found"})
        );
    }
    let rejected = stub.rejected();
    assert_eq!(rejected.len(), 2);
    assert!(
        rejected
            .iter()
            .all(|r| !r.contains("1:other") && !r.contains(TOKEN)),
        "{rejected:?}"
    );
}

#[tokio::test]
async fn a_text_over_the_bot_api_limit_is_shortened_and_accepted_with_its_button() {
    // Arrange: a 9,013-character text (the length seen in production), in bold and italics,
    // with entities along the way.
    let (stub, sender) = stub_and_sender().await;
    let body = "Répétition &amp; filage, salle 2. ".repeat(300);
    let mut long = message("424242", true);
    long.html = format!("<b>Carmen</b>\n\n<i>{body}</i>");
    let visible = clairon_adapters::testing::telegram_stub::parse_telegram_html(&long.html)
        .expect("the long text is valid Telegram HTML");
    assert!(
        visible.encode_utf16().count() > 9_000,
        "the text is over the limit before it is sent"
    );

    // Act
    let outcome = sender.send(&long).await;

    // Assert
    assert!(
        matches!(outcome, SendOutcome::Sent { .. }),
        "{outcome:?}; refused: {:?}",
        stub.rejected()
    );
    let received = &stub.messages()[0];
    let length = received.visible_text.encode_utf16().count();
    assert!(length <= 4_096, "{length} characters after entity parsing");
    assert!(
        received.visible_text.ends_with('…'),
        "the cut says so: {:?}",
        &received.visible_text[received.visible_text.len() - 40..]
    );
    assert!(
        received.text.ends_with("…</i>"),
        "the open <i> is closed after the ellipsis"
    );
    assert_eq!(
        received.reply_markup,
        Some(json!({"inline_keyboard": [[{
            "text": "Voir le planning",
            "url": "https://clairon.example/notifications/42",
        }]]})),
        "the action link (the button) is kept"
    );
}
