//! Resolving pending authentications: the router reports
//! [`RouterEvent::AuthPending`](crate::broker::RouterEvent::AuthPending), this runs the
//! plugin's slow check as a task of its own and hands the answer back under the lock.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Runtime;
use super::broker::Shared;
use crate::auth::{AuthDecision, AuthFuture, Credentials, Refusal};
use crate::broker::{LinkId, Router};

/// How long an authenticator may take before the client is refused with CONNACK 3 (server
/// unavailable). The link's keep-alive may end it sooner.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

type Spawner = Box<dyn Fn(LinkId, u64, AuthFuture) + Send + Sync>;

/// Starts the slow checks of pending authentications; lives in the locked state.
#[derive(Default)]
pub(super) struct AuthDriver {
    spawner: Option<Spawner>,
}

impl fmt::Debug for AuthDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthDriver").field("ready", &self.spawner.is_some()).finish()
    }
}

impl AuthDriver {
    /// Connects the driver to the broker it serves (once the shared state exists).
    pub(super) fn attach<R: Runtime>(&mut self, shared: Weak<Shared<R>>) {
        self.spawner = Some(Box::new(move |link, id, check| {
            let Some(strong) = shared.upgrade() else { return };
            let runtime = strong.runtime.clone();
            let task = async move {
                let deadline = strong.runtime.now() + AUTH_TIMEOUT;
                let timeout = strong.runtime.sleep_until(deadline);
                let decision = match futures::future::select(check, timeout).await {
                    futures::future::Either::Left((decision, _)) => decision,
                    futures::future::Either::Right(_) => {
                        log::warn!("{link}: authentication took longer than {AUTH_TIMEOUT:?}; refused");
                        AuthDecision::Deny(Refusal::Unavailable)
                    }
                };
                let now = strong.runtime.now();
                let mut state = strong.lock();
                state.router.resolve_auth(now, link, id, decision);
                state.dispatch();
            };
            runtime.spawn(Box::pin(task));
        }));
    }

    /// Starts the slow check of authenticator `plugin` for the CONNECT of `link`.
    pub(super) fn start(&self, router: &Router, link: LinkId, id: u64, plugin: usize, credentials: Credentials) {
        let check: AuthFuture = match router.authenticator(plugin) {
            Some(plugin) => plugin.authenticate_later(credentials),
            None => Box::pin(std::future::ready(AuthDecision::NoOpinion)),
        };
        match &self.spawner {
            Some(spawn) => spawn(link, id, check),
            None => log::error!("{link}: authentication pending, but the broker's driver is not attached"),
        }
    }
}

/// Keeps the shared state's type out of the public API while tying the spawner to it.
pub(super) fn attach<R: Runtime>(shared: &Arc<Shared<R>>) {
    let weak = Arc::downgrade(shared);
    shared.lock().auth.attach(weak);
}
