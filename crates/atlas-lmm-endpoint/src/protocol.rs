//! The OpenAI chat-completions wire format: images as base64 `data:` URLs, the request body,
//! and reading `choices[0].message.content` from the response.

use serde_json::{Value, json};

use crate::config::{GenerationParams, Sampling};

/// One question: text and the encoded images (PNG, JPEG, WebP or GIF bytes) it is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatItem {
    pub text: String,
    pub images: Vec<Vec<u8>>,
}

impl ChatItem {
    /// A question about one image.
    pub fn with_image(text: impl Into<String>, image: Vec<u8>) -> Self {
        Self {
            text: text.into(),
            images: vec![image],
        }
    }
}

/// A server's answer to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `choices[0].message.content`.
    pub text: String,
    /// `choices[0].finish_reason` ("stop", "length", ...), when given.
    pub finish_reason: Option<String>,
    /// `usage.prompt_tokens` / `usage.completion_tokens`, when given.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// The `model` the server says answered, when given.
    pub model: Option<String>,
    /// `choices[0].token_ids` and `prompt_token_ids`, when the server returns them (see
    /// `EndpointConfig::request_token_ids`).
    pub token_ids: Option<Vec<u32>>,
    pub prompt_token_ids: Option<Vec<u32>>,
    /// Requests sent for this item (1 = no retry).
    pub attempts: u32,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (RFC 4648 section 4).
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The MIME type of encoded image bytes from their signature, or `None` for an unknown format.
pub fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// `data:<mime>;base64,<data>` for encoded image bytes; an error names the item's image.
pub fn data_url(bytes: &[u8], index: usize) -> Result<String, String> {
    let mime = image_mime(bytes).ok_or_else(|| {
        format!(
            "image {index} ({} bytes) is not PNG, JPEG, WebP or GIF; encode it as PNG or JPEG \
             first",
            bytes.len()
        )
    })?;
    Ok(format!("data:{mime};base64,{}", base64(bytes)))
}

/// The request body: one user message whose content parts are the images (first, as LLaVA
/// puts `<image>` before the question) and then the text; `"return_token_ids": true` when
/// `token_ids`.
pub fn request_body(
    model: &str,
    item: &ChatItem,
    params: &GenerationParams,
    token_ids: bool,
) -> Result<Value, String> {
    let mut parts = Vec::with_capacity(item.images.len() + 1);
    for (i, image) in item.images.iter().enumerate() {
        parts.push(json!({"type": "image_url", "image_url": {"url": data_url(image, i)?}}));
    }
    parts.push(json!({"type": "text", "text": item.text}));
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": params.max_tokens,
        "stream": false,
    });
    if token_ids {
        body["return_token_ids"] = json!(true);
    }
    match params.sampling {
        Sampling::Greedy => body["temperature"] = json!(0.0),
        Sampling::Seeded {
            temperature,
            top_p,
            seed,
        } => {
            body["temperature"] = json!(temperature);
            body["seed"] = json!(seed);
            if let Some(p) = top_p {
                body["top_p"] = json!(p);
            }
        }
    }
    Ok(body)
}

/// The first `n` characters of a body, for error messages.
pub fn body_start(body: &str, n: usize) -> String {
    body.chars().take(n).collect()
}

/// The error message of an error body (`{"error": {"message": ...}}`, `{"error": "..."}`,
/// `{"detail": ...}`, `{"message": ...}`), else the body's start.
pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let found = v["error"]["message"]
            .as_str()
            .or(v["error"].as_str())
            .or(v["message"].as_str())
            .or(v["detail"].as_str());
        if let Some(m) = found {
            return m.to_string();
        }
        if !v["detail"].is_null() {
            return v["detail"].to_string();
        }
    }
    let start = body_start(body.trim(), 300);
    if start.is_empty() {
        "(empty body)".to_string()
    } else {
        start
    }
}

/// Whether a 4xx message is about image input (then the error is reported as images refused).
pub fn mentions_images(message: &str) -> bool {
    let m = message.to_lowercase();
    ["image", "vision", "multimodal", "multi-modal", "modality"]
        .iter()
        .any(|w| m.contains(w))
}

/// The answer in a 2xx body, or what is wrong with it.
pub fn parse_answer(body: &str, attempts: u32) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    let choice = v["choices"]
        .get(0)
        .ok_or("the JSON has no choices[0] (an empty or missing `choices` list)")?;
    let content = &choice["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        // Some servers return content parts.
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => {
            return Err(format!(
                "choices[0].message.content is {} (a string is expected)",
                if content.is_null() {
                    "missing".to_string()
                } else {
                    content.to_string()
                }
            ));
        }
    };
    Ok(Answer {
        text,
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64(),
        completion_tokens: v["usage"]["completion_tokens"].as_u64(),
        model: v["model"].as_str().map(str::to_string),
        token_ids: ids(&choice["token_ids"]),
        prompt_token_ids: ids(&v["prompt_token_ids"]),
        attempts,
    })
}

/// A JSON list of token ids, or `None` when absent or not a list of u32.
fn ids(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
        assert_eq!(base64(&[0xFB, 0xFF, 0xBF]), "+/+/");
    }

    #[test]
    fn data_urls_sniff_the_format() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        assert!(
            data_url(png, 0)
                .unwrap()
                .starts_with("data:image/png;base64,iVBORw0KGg")
        );
        assert!(
            data_url(&[0xFF, 0xD8, 0xFF, 0xE0], 0)
                .unwrap()
                .starts_with("data:image/jpeg")
        );
        let err = data_url(b"BM....", 2).unwrap_err();
        assert!(err.contains("image 2"), "{err}");
    }

    #[test]
    fn request_body_greedy_and_seeded() {
        let item = ChatItem::with_image("What is it?", b"\x89PNG\r\n\x1a\n".to_vec());
        let b = request_body("m", &item, &GenerationParams::default(), false).unwrap();
        assert_eq!(b["temperature"], 0.0);
        assert_eq!(b["max_tokens"], 64);
        let parts = b["messages"][0]["content"].as_array().unwrap();
        assert_eq!(parts[0]["type"], "image_url");
        assert_eq!(parts[1]["text"], "What is it?");
        let p = GenerationParams {
            max_tokens: 5,
            sampling: Sampling::Seeded {
                temperature: 0.7,
                top_p: Some(0.9),
                seed: 42,
            },
        };
        let b = request_body("m", &item, &p, true).unwrap();
        assert_eq!(b["return_token_ids"], true);
        assert_eq!(b["seed"], 42);
        assert!(b["top_p"].as_f64().is_some());
    }

    #[test]
    fn responses_and_error_bodies() {
        let ok = r#"{"model":"x","choices":[{"message":{"content":"a dog"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#;
        let a = parse_answer(ok, 1).unwrap();
        assert_eq!(a.text, "a dog");
        assert_eq!(a.completion_tokens, Some(2));
        assert_eq!(a.token_ids, None);
        let with_ids = r#"{"prompt_token_ids":[1,5],"choices":[{"message":{"content":"x"},"token_ids":[7,2]}]}"#;
        let a = parse_answer(with_ids, 1).unwrap();
        assert_eq!(
            (a.token_ids, a.prompt_token_ids),
            (Some(vec![7, 2]), Some(vec![1, 5]))
        );
        assert!(parse_answer("<html>", 1).unwrap_err().contains("not JSON"));
        assert!(
            parse_answer(r#"{"choices":[]}"#, 1)
                .unwrap_err()
                .contains("choices[0]")
        );
        assert!(
            parse_answer(r#"{"choices":[{"message":{}}]}"#, 1)
                .unwrap_err()
                .contains("missing")
        );
        assert_eq!(
            error_message(r#"{"error":{"message":"no images"}}"#),
            "no images"
        );
        assert_eq!(error_message(r#"{"detail":"bad"}"#), "bad");
        assert_eq!(error_message(""), "(empty body)");
        assert!(mentions_images("Image input is not supported"));
        assert!(!mentions_images("max_tokens too large"));
    }
}
