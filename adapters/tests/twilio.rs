//! `TwilioSmsSender` against a local stand-in for Twilio's Messages API: the requests it makes
//! (path, Basic auth, form body, E.164 and `whatsapp:` addresses) and how it classifies each
//! answer class. Also checks that the stand-in refuses what Twilio refuses, by calling it
//! directly.
#![cfg(feature = "test-support")]

use std::time::Duration;

use clairon_adapters::channels::{TwilioAccount, TwilioSmsSender};
use clairon_adapters::testing::TwilioStub;
use clairon_application::ports::{SendOutcome, SmsMessage, SmsSender};
use clairon_domain::{DeliveryId, PhoneNumber};
use rstest::rstest;

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "twilio-token-secret";
const SMS_FROM: &str = "+15005550006";
const WHATSAPP_FROM: &str = "+14155238886";
const TO: &str = "+33612345678";

fn account(api_url: String, token: &str) -> TwilioAccount {
    TwilioAccount {
        api_url,
        account_sid: SID.into(),
        auth_token: token.into(),
        sms_from: Some(PhoneNumber::parse(SMS_FROM).unwrap()),
        whatsapp_from: Some(PhoneNumber::parse(WHATSAPP_FROM).unwrap()),
    }
}

fn message(whatsapp: bool, body: &str) -> SmsMessage {
    SmsMessage {
        delivery_id: DeliveryId::parse("d-1").unwrap(),
        to: PhoneNumber::parse(TO).unwrap(),
        body: body.into(),
        whatsapp,
    }
}

async fn stub_and_sender() -> (TwilioStub, TwilioSmsSender) {
    let stub = TwilioStub::start(SID, TOKEN).await;
    let sender =
        TwilioSmsSender::new(account(stub.base_url(), TOKEN), Duration::from_secs(5)).unwrap();
    (stub, sender)
}

#[tokio::test]
async fn an_sms_goes_out_from_the_sms_number_and_comes_back_with_its_sid() {
    let (stub, sender) = stub_and_sender().await;

    let outcome = sender
        .send(&message(
            false,
            "Répétition à 9h & café\nhttps://c.example/p?a=1&b=2",
        ))
        .await;

    let received = stub.messages();
    assert_eq!(stub.rejected(), Vec::<String>::new());
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, TO);
    assert_eq!(received[0].from, SMS_FROM);
    assert_eq!(
        received[0].body, "Répétition à 9h & café\nhttps://c.example/p?a=1&b=2",
        "form-encoded and decoded intact"
    );
    let sid = received[0].sid.clone().unwrap();
    assert!(sid.starts_with("SM"), "{sid}");
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            provider_message_id: sid
        }
    );
}

#[tokio::test]
async fn a_whatsapp_message_carries_the_whatsapp_prefix_on_both_numbers() {
    let (stub, sender) = stub_and_sender().await;

    let outcome = sender.send(&message(true, "Bonjour")).await;

    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    let received = stub.messages();
    assert_eq!(received[0].to, format!("whatsapp:{TO}"));
    assert_eq!(received[0].from, format!("whatsapp:{WHATSAPP_FROM}"));
    assert!(received[0].is_whatsapp());
}

#[rstest]
#[case::invalid(21211, "the number is invalid")]
#[case::not_mobile(21614, "not a mobile number")]
#[case::unsubscribed(21610, "unsubscribed")]
#[tokio::test]
async fn a_number_twilio_refuses_is_a_permanent_failure_saying_why(
    #[case] code: u32,
    #[case] why: &str,
) {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_number(TO, 400, Some(code), "refused");

    let outcome = sender.send(&message(false, "Bonjour")).await;

    match outcome {
        SendOutcome::Permanent(cause) => {
            assert!(cause.contains(why), "{cause}");
            assert!(cause.contains(&code.to_string()), "{cause}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert_eq!(stub.failed_attempts().len(), 1);
}

#[tokio::test]
async fn another_client_error_is_permanent() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(
        403,
        Some(21408),
        "Permission to send an SMS has not been enabled",
    );

    let outcome = sender.send(&message(false, "Bonjour")).await;

    assert!(
        matches!(&outcome, SendOutcome::Permanent(c) if c.contains("21408")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_never_named() {
    let stub = TwilioStub::start(SID, TOKEN).await;
    let sender = TwilioSmsSender::new(
        account(stub.base_url(), "wrong-token-secret"),
        Duration::from_secs(5),
    )
    .unwrap();

    let outcome = sender.send(&message(false, "Bonjour")).await;

    match outcome {
        SendOutcome::Permanent(cause) => {
            assert!(cause.contains("401"), "{cause}");
            assert!(!cause.contains("secret"), "{cause}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert_eq!(stub.rejected().len(), 1, "the stand-in checked Basic auth");
}

#[tokio::test]
async fn a_429_is_rate_limited_for_the_seconds_twilio_asks() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(429, Some(20429), "Too Many Requests");

    let outcome = sender.send(&message(false, "Bonjour")).await;

    assert_eq!(
        outcome,
        SendOutcome::RateLimited {
            retry_after: Duration::from_secs(1)
        }
    );
}

#[tokio::test]
async fn a_server_error_is_transient_and_the_next_try_goes_through() {
    let (stub, sender) = stub_and_sender().await;
    stub.fail_next(500, Some(20500), "Internal Server Error");

    let first = sender.send(&message(false, "Bonjour")).await;
    let second = sender.send(&message(false, "Bonjour")).await;

    assert!(matches!(first, SendOutcome::Transient(_)), "{first:?}");
    assert!(matches!(second, SendOutcome::Sent { .. }), "{second:?}");
}

#[tokio::test]
async fn an_unreachable_api_is_transient_and_the_error_does_not_leak_the_token() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sender = TwilioSmsSender::new(
        account(format!("http://127.0.0.1:{port}"), TOKEN),
        Duration::from_secs(5),
    )
    .unwrap();

    let outcome = sender.send(&message(false, "Bonjour")).await;

    match outcome {
        SendOutcome::Transient(cause) => assert!(!cause.contains(TOKEN), "{cause}"),
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_api_is_a_transient_timeout() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let sender = TwilioSmsSender::new(
        account(format!("http://127.0.0.1:{port}"), TOKEN),
        Duration::from_millis(300),
    )
    .unwrap();

    let outcome = sender.send(&message(false, "Bonjour")).await;

    assert_eq!(
        outcome,
        SendOutcome::Transient("Twilio did not answer in time".into())
    );
}

#[tokio::test]
async fn without_a_whatsapp_number_a_whatsapp_message_is_refused_before_any_request() {
    let stub = TwilioStub::start(SID, TOKEN).await;
    let mut account = account(stub.base_url(), TOKEN);
    account.whatsapp_from = None;
    let sender = TwilioSmsSender::new(account, Duration::from_secs(5)).unwrap();

    let outcome = sender.send(&message(true, "Bonjour")).await;

    assert!(
        matches!(&outcome, SendOutcome::Permanent(c) if c.contains("CLAIRON_WHATSAPP_FROM")),
        "{outcome:?}"
    );
    assert!(stub.messages().is_empty() && stub.rejected().is_empty());
}

/// Posts a raw form to the stand-in with the right credentials.
async fn post_raw(stub: &TwilioStub, content_type: &str, form: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages.json",
            stub.base_url()
        ))
        .basic_auth(SID, Some(TOKEN))
        .header("content-type", content_type)
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

const FORM: &str = "application/x-www-form-urlencoded";

#[rstest]
#[case::json_body(
    "application/json",
    "To=%2B33612345678&From=%2B15005550006&Body=hi",
    20001
)]
#[case::national_number(FORM, "To=0612345678&From=%2B15005550006&Body=hi", 21211)]
#[case::bad_from(FORM, "To=%2B33612345678&From=Clairon&Body=hi", 21212)]
#[case::mixed_channels(
    FORM,
    "To=whatsapp%3A%2B33612345678&From=%2B15005550006&Body=hi",
    21910
)]
#[case::empty_body(FORM, "To=%2B33612345678&From=%2B15005550006&Body=", 21602)]
#[case::no_to(FORM, "From=%2B15005550006&Body=hi", 21604)]
#[tokio::test]
async fn the_stand_in_refuses_what_twilio_refuses(
    #[case] content_type: &str,
    #[case] form: &str,
    #[case] code: u64,
) {
    let stub = TwilioStub::start(SID, TOKEN).await;

    let (status, answer) = post_raw(&stub, content_type, form).await;

    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], code, "{answer}");
    assert_eq!(answer["status"], 400);
    assert!(stub.messages().is_empty());
}

#[tokio::test]
async fn the_stand_in_refuses_a_body_over_1600_characters() {
    let stub = TwilioStub::start(SID, TOKEN).await;
    let form = format!(
        "To=%2B33612345678&From=%2B15005550006&Body={}",
        "é".repeat(1601)
    );

    let (status, answer) = post_raw(&stub, FORM, &form).await;

    assert_eq!((status, answer["code"].as_u64()), (400, Some(21617)));
}
