//! LLaVA's `llava_v1` conversation template (`conv_llava_v1` = `conv_vicuna_v1` in
//! `llava/conversation.py`: `SeparatorStyle.TWO`, roles `USER` / `ASSISTANT`, `sep = " "`,
//! `sep2 = "</s>"`), the template LLaVA-1.5 was trained with and the ImageNet-D protocol uses
//! for the v1.5 / v1.6-vicuna models. `get_prompt` is ported as written:
//!
//! ```text
//! ret = system + sep
//! for i, (role, message) in enumerate(messages):
//!     ret += role + ": " + message + [sep, sep2][i % 2]   if message
//!     ret += role + ":"                                    otherwise
//! ```
//!
//! The image goes first in the first user message, as LLaVA's `run_llava` puts it
//! (`DEFAULT_IMAGE_TOKEN + "\n" + question`, `mm_use_im_start_end = False`), giving
//! `"{system} USER: <image>\n{question} ASSISTANT:"`.

/// The placeholder the processor expands into the image tokens.
pub const IMAGE_PLACEHOLDER: &str = "<image>";

/// `conv_vicuna_v1.system`.
pub const LLAVA_V1_SYSTEM: &str = "A chat between a curious human and an artificial \
intelligence assistant. The assistant gives helpful, detailed, and polite answers to the \
human's questions.";

/// A conversation in the `llava_v1` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub system: String,
    pub roles: [String; 2],
    pub sep: String,
    pub sep2: String,
    /// (role index 0 = user / 1 = assistant, message; `None` = the open turn to generate).
    pub messages: Vec<(usize, Option<String>)>,
}

impl Default for Conversation {
    fn default() -> Self {
        Self::llava_v1()
    }
}

impl Conversation {
    /// An empty `llava_v1` conversation.
    pub fn llava_v1() -> Self {
        Self {
            system: LLAVA_V1_SYSTEM.to_string(),
            roles: ["USER".to_string(), "ASSISTANT".to_string()],
            sep: " ".to_string(),
            sep2: "</s>".to_string(),
            messages: Vec::new(),
        }
    }

    /// `append_message(roles[role], message)`.
    pub fn append(&mut self, role: usize, message: Option<&str>) -> &mut Self {
        self.messages
            .push((role.min(1), message.map(str::to_string)));
        self
    }

    /// `get_prompt()` of `SeparatorStyle.TWO`.
    pub fn prompt(&self) -> String {
        let seps = [self.sep.as_str(), self.sep2.as_str()];
        let mut ret = format!("{}{}", self.system, seps[0]);
        for (i, (role, message)) in self.messages.iter().enumerate() {
            let role = &self.roles[*role];
            match message {
                Some(m) if !m.is_empty() => {
                    ret.push_str(role);
                    ret.push_str(": ");
                    ret.push_str(m);
                    ret.push_str(seps[i % 2]);
                }
                _ => {
                    ret.push_str(role);
                    ret.push(':');
                }
            }
        }
        ret
    }
}

/// The single-turn `llava_v1` prompt for `question`, with the image placeholder first when
/// `with_image`: `"{system} USER: <image>\n{question} ASSISTANT:"`.
pub fn llava_v1_prompt(question: &str, with_image: bool) -> String {
    let user = if with_image {
        format!("{IMAGE_PLACEHOLDER}\n{question}")
    } else {
        question.to_string()
    };
    let mut conv = Conversation::llava_v1();
    conv.append(0, Some(&user)).append(1, None);
    conv.prompt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_turn() {
        assert_eq!(
            llava_v1_prompt("What is this?", true),
            format!("{LLAVA_V1_SYSTEM} USER: <image>\nWhat is this? ASSISTANT:")
        );
    }

    #[test]
    fn multi_turn_uses_sep2_after_answers() {
        let mut c = Conversation::llava_v1();
        c.append(0, Some("hi"))
            .append(1, Some("hello"))
            .append(0, Some("bye"))
            .append(1, None);
        assert_eq!(
            c.prompt(),
            format!("{LLAVA_V1_SYSTEM} USER: hi ASSISTANT: hello</s>USER: bye ASSISTANT:")
        );
    }
}
