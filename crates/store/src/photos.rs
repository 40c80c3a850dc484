//! Photos of incidents, stored by content hash.

use sqlx::Row;

use crate::StoreError;
use crate::audit::Actor;
use crate::db::Db;

/// A stored photo's identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PhotoRef {
    /// SHA-256 of the stored bytes, hex.
    pub hash: String,
    pub mime: String,
    pub size: i64,
}

impl Db {
    /// Store a photo (already stripped of metadata) and link it to an incident. The same
    /// bytes are stored once, however often they are sent.
    pub(crate) async fn add_photo(&self, actor: &Actor, incident_id: i64, mime: &str, bytes: Vec<u8>) -> Result<PhotoRef, StoreError> {
        use sha2::Digest;
        let hash = domain::audit::hex(&sha2::Sha256::digest(&bytes));
        let size = bytes.len() as i64;
        let now = self.now_ms();
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO photos (hash, mime, size, bytes, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hash) DO NOTHING")
            .bind(&hash)
            .bind(mime)
            .bind(size)
            .bind(bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO incident_photos (incident_id, hash, added_by, added_at) VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id, hash) DO NOTHING")
            .bind(incident_id)
            .bind(&hash)
            .bind(&actor.name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PhotoRef { hash, mime: mime.to_string(), size })
    }

    pub async fn photos_of(&self, incident_id: i64) -> Result<Vec<PhotoRef>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.hash, p.mime, p.size FROM incident_photos i JOIN photos p ON p.hash = i.hash WHERE i.incident_id = $1 ORDER BY i.added_at, p.hash",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(PhotoRef { hash: r.try_get("hash")?, mime: r.try_get("mime")?, size: r.try_get("size")? })).collect()
    }

    /// The incidents a photo belongs to (for the scope check).
    pub(crate) async fn photo_incidents(&self, hash: &str) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT incident_id FROM incident_photos WHERE hash = $1").bind(hash).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }

    pub(crate) async fn photo_bytes(&self, hash: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query("SELECT mime, bytes FROM photos WHERE hash = $1").bind(hash).fetch_optional(&self.pool).await?;
        row.map(|r| Ok((r.try_get("mime")?, r.try_get("bytes")?))).transpose()
    }
}
