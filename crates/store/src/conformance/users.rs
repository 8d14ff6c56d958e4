//! Checks of [`UserStore`]: lookup by token hash, unique names, listing.

use opti_core::ports::StoreError;
use opti_core::Role;

use super::fixtures::{base_time, user};
use super::{expect_err, run_tag, CheckResult, Context, Ports};

/// A user is found by the hash of their token, an unknown hash finds nobody, a taken
/// name is `AlreadyExists` (the first user kept), and the list shows everyone added.
pub async fn users_are_found_by_token_hash_and_names_are_unique(ports: &Ports<'_>) -> CheckResult {
    let tag = run_tag();
    let now = base_time();
    let ann = user(
        &format!("ann-{tag}"),
        &format!("{tag}-ann"),
        Role::Reviewer,
        now,
    );
    let cam = user(
        &format!("cam-{tag}"),
        &format!("{tag}-cam"),
        Role::Camera,
        now,
    );
    for u in [&ann, &cam] {
        ports.users.add_user(u).await.ctx("adding a user")?;
    }

    let found = ports
        .users
        .user_by_token_hash(&ann.token_sha256)
        .await
        .ctx("lookup by token hash")?;
    ensure_eq!(found.as_ref(), Some(&ann), "user found by token hash");
    let nobody = ports
        .users
        .user_by_token_hash(&"0".repeat(64))
        .await
        .ctx("lookup of an unknown hash")?;
    ensure_eq!(nobody, None, "user found by an unknown hash");

    let twin = user(&ann.name, &format!("{tag}-twin"), Role::Admin, now);
    let err = expect_err(ports.users.add_user(&twin).await, "adding a taken name")?;
    ensure!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "adding a taken name gave {err:?}, not AlreadyExists"
    );
    let still = ports
        .users
        .user_by_token_hash(&twin.token_sha256)
        .await
        .ctx("lookup of the refused twin")?;
    ensure_eq!(still, None, "the refused twin's token");
    let found = ports
        .users
        .user_by_token_hash(&ann.token_sha256)
        .await
        .ctx("lookup after the refused twin")?;
    ensure_eq!(
        found.map(|u| u.role),
        Some(Role::Reviewer),
        "first user's role"
    );

    let listed = ports.users.list_users().await.ctx("listing users")?;
    let mut ours: Vec<_> = listed
        .into_iter()
        .filter(|u| u.name.ends_with(&tag))
        .collect();
    ours.sort_by(|x, y| x.name.cmp(&y.name));
    ensure_eq!(ours, vec![ann, cam], "users listed");
    Ok(())
}
