//! Local-mode users in SQLite, unique by name and by token hash.

use async_trait::async_trait;
use opti_core::ports::{StoreError, UserStore};
use opti_core::User;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::error::LocalError;
use super::{decode, encode, nanos, LocalStore};

const ENTITY: &str = "user";

fn add(conn: &mut Connection, user: &User) -> Result<(), LocalError> {
    let body = encode(ENTITY, user)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = |sql: &str, key: &str| -> Result<bool, LocalError> {
        Ok(tx.query_row(sql, [key], |_| Ok(())).optional()?.is_some())
    };
    if taken("SELECT 1 FROM users WHERE name = ?1", &user.name)? {
        return Err(LocalError::AlreadyExists {
            entity: ENTITY,
            id: user.name.clone(),
        });
    }
    if taken(
        "SELECT 1 FROM users WHERE token_sha256 = ?1",
        &user.token_sha256,
    )? {
        // Never echo the hash: a short prefix is enough to find the clash.
        let shown: String = user.token_sha256.chars().take(8).collect();
        return Err(LocalError::AlreadyExists {
            entity: "user token",
            id: format!("{shown}…"),
        });
    }
    tx.execute(
        "INSERT INTO users (name, token_sha256, created_at, body) VALUES (?1, ?2, ?3, ?4)",
        params![user.name, user.token_sha256, nanos(user.created_at)?, body],
    )?;
    tx.commit()?;
    Ok(())
}

fn by_token_hash(conn: &Connection, token_sha256: &str) -> Result<Option<User>, LocalError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT name, body FROM users WHERE token_sha256 = ?1",
            [token_sha256],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(name, body)| decode(ENTITY, &name, &body))
        .transpose()
}

fn list(conn: &Connection) -> Result<Vec<User>, LocalError> {
    let mut stmt = conn.prepare_cached("SELECT name, body FROM users ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut users = Vec::new();
    for row in rows {
        let (name, body) = row?;
        users.push(decode(ENTITY, &name, &body)?);
    }
    Ok(users)
}

#[async_trait]
impl UserStore for LocalStore {
    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        self.with_conn(move |c| add(c, &user)).await
    }

    async fn user_by_token_hash(&self, token_sha256: &str) -> Result<Option<User>, StoreError> {
        let hash = token_sha256.to_owned();
        self.with_conn(move |c| by_token_hash(c, &hash)).await
    }

    /// Sorted by name.
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.with_conn(|c| list(c)).await
    }
}
