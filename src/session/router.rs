//! Where each incoming message goes: a reply to the call that awaits it (by serial), a
//! signal to the inbox and to the handlers registered for it, a method call to its default
//! answer. One router serves a session for its whole life; its single filter is put on each
//! connection the session opens, so nothing registered here is lost when a connection is
//! replaced, and handler ids are the session's own.

use std::collections::{BTreeMap, HashMap};

use dbus::Message;
use dbus::message::{MatchRule, MessageType};

use crate::session::inbox::Inbox;

/// What a handler does with a signal that matches its rule.
pub(crate) type OnSignal = Box<dyn FnMut(&Message) + Send>;

/// The id of a registered handler; never reused within a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HandlerId(u64);

struct Handler {
    rule: MatchRule<'static>,
    on_signal: OnSignal,
}

/// Replies, signal handlers and the inbox of one session.
pub(crate) struct Router {
    pub(crate) inbox: Inbox,
    /// Calls that await a reply, by serial; `Some` once it came.
    replies: HashMap<u32, Option<Message>>,
    handlers: BTreeMap<HandlerId, Handler>,
    next_handler: u64,
}

impl Router {
    pub(crate) fn new(direct: bool) -> Self {
        Router {
            inbox: Inbox::new(direct),
            replies: HashMap::new(),
            handlers: BTreeMap::new(),
            next_handler: 1,
        }
    }

    /// Handles one incoming message; returns the answer to send back, if any (the default
    /// answer to a method call, which this crate never expects).
    pub(crate) fn dispatch(&mut self, msg: Message) -> Option<Message> {
        match msg.msg_type() {
            MessageType::MethodReturn | MessageType::Error => {
                match msg
                    .get_reply_serial()
                    .and_then(|s| self.replies.get_mut(&s))
                {
                    Some(slot) => *slot = Some(msg),
                    None => log::debug!(
                        "a reply to serial {:?}, which nothing awaits: dropped",
                        msg.get_reply_serial()
                    ),
                }
                None
            }
            MessageType::Signal => {
                self.inbox.on_signal(&msg);
                for handler in self.handlers.values_mut() {
                    if handler.rule.matches(&msg) {
                        (handler.on_signal)(&msg);
                    }
                }
                None
            }
            // A call without a serial (invalid, but libdbus reads it) cannot be answered:
            // libdbus aborts the process on a reply to serial 0.
            MessageType::MethodCall if msg.get_serial().is_none() => None,
            MessageType::MethodCall => dbus::channel::default_reply(&msg),
        }
    }

    /// Makes room for the reply to `serial`.
    pub(crate) fn await_reply(&mut self, serial: u32) {
        self.replies.insert(serial, None);
    }

    /// The reply to `serial` if it came; it is no longer awaited then.
    pub(crate) fn take_reply(&mut self, serial: u32) -> Option<Message> {
        match self.replies.get(&serial) {
            Some(Some(_)) => self.replies.remove(&serial).flatten(),
            _ => None,
        }
    }

    /// Whether the reply to `serial` came, without taking it.
    pub(crate) fn peek_reply(&self, serial: u32) -> Option<&Message> {
        self.replies.get(&serial).and_then(Option::as_ref)
    }

    /// Stops awaiting `serial`: a reply that comes later is dropped.
    pub(crate) fn forget_reply(&mut self, serial: u32) {
        self.replies.remove(&serial);
    }

    pub(crate) fn add_handler(
        &mut self,
        rule: MatchRule<'static>,
        on_signal: OnSignal,
    ) -> HandlerId {
        let id = HandlerId(self.next_handler);
        self.next_handler += 1;
        self.handlers.insert(id, Handler { rule, on_signal });
        id
    }

    pub(crate) fn remove_handler(&mut self, id: HandlerId) {
        self.handlers.remove(&id);
    }

    /// How many replies are awaited and handlers registered (for tests of leaks).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.replies.len(), self.handlers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn signal(path: &str) -> Message {
        Message::new_signal(path, "org.freedesktop.DBus.Properties", "PropertiesChanged").unwrap()
    }

    #[test]
    fn method_calls_get_the_default_answer_but_one_without_a_serial_none() {
        let mut router = Router::new(false);
        let mut call = Message::new_method_call(":1.5", "/x", "a.b", "C").unwrap();
        // As received: no serial (invalid; libdbus would abort on a reply to it).
        assert_eq!(call.get_serial(), None);
        assert!(router.dispatch(call.duplicate().unwrap()).is_none());
        call.set_serial(9);
        let answer = router.dispatch(call).expect("an answer");
        assert_eq!(answer.get_reply_serial(), Some(9));
    }

    #[test]
    fn handlers_get_only_their_signals_and_ids_are_never_reused() {
        let mut router = Router::new(true);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut ids = Vec::new();
        for path in ["/a", "/b"] {
            let mut rule =
                MatchRule::new_signal("org.freedesktop.DBus.Properties", "PropertiesChanged");
            rule.path = Some(path.into());
            let seen = Arc::clone(&seen);
            ids.push(router.add_handler(rule, Box::new(move |_| seen.lock().unwrap().push(path))));
        }
        router.dispatch(signal("/b"));
        router.remove_handler(ids[0]);
        router.dispatch(signal("/a"));
        let mut rule = MatchRule::new_signal("x.y", "Z");
        rule.path = Some("/c".into());
        let newer = router.add_handler(rule, Box::new(|_| {}));
        assert!(ids.iter().all(|&id| id < newer));
        assert_eq!(*seen.lock().unwrap(), vec!["/b"]);
    }

    #[test]
    fn replies_go_to_the_serial_that_awaits_them_and_others_are_dropped() {
        let mut router = Router::new(true);
        let mut call = Message::new_method_call("a.b", "/", "a.b", "C").unwrap();
        call.set_serial(7);
        router.await_reply(7);
        let mut other = Message::new_method_call("a.b", "/", "a.b", "C").unwrap();
        other.set_serial(8);
        router.dispatch(other.method_return());
        assert!(router.take_reply(7).is_none());
        router.dispatch(call.method_return());
        assert!(router.take_reply(7).is_some());
        assert_eq!(router.sizes(), (0, 0));
    }
}
