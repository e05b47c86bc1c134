//! Unit tests of `pagination.rs`.

use super::*;
use futures::TryStreamExt as _;
use std::sync::{Arc, Mutex};

fn info(page: Option<u64>, total_pages: Option<u64>) -> Option<ResultInfo> {
    Some(ResultInfo {
        page,
        total_pages,
        ..ResultInfo::default()
    })
}

/// A fake server: answers page `n` with `pages(n)` and records the requests.
fn stream_of(
    pages: impl Fn(u32) -> Result<Page<u32>> + Send + Sync + 'static,
) -> (PageStream<u32>, Arc<Mutex<Vec<u32>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    let pages = Arc::new(pages);
    let stream = paginate(1, move |n| {
        seen.lock().unwrap().push(n);
        let pages = Arc::clone(&pages);
        async move { pages(n) }
    });
    (stream, log)
}

#[tokio::test]
async fn walks_pages_until_total_pages() {
    let (stream, log) = stream_of(|n| {
        Ok(Page::new(
            vec![n * 10, n * 10 + 1],
            info(Some(n.into()), Some(3)),
        ))
    });
    let items: Vec<u32> = stream.try_collect().await.unwrap();
    assert_eq!(items, [10, 11, 20, 21, 30, 31]);
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn is_lazy() {
    let (stream, log) = stream_of(|_| Ok(Page::new(vec![1], None)));
    assert!(log.lock().unwrap().is_empty());
    drop(stream);
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_server_ignoring_page_is_noticed_by_number_or_by_items() {
    let (stream, log) = stream_of(|_| Ok(Page::new(vec![1, 2], info(Some(1), Some(5)))));
    let items: Vec<u32> = stream.try_collect().await.unwrap();
    assert_eq!(items, [1, 2]);
    assert_eq!(log.lock().unwrap().len(), 2);

    let (stream, log) = stream_of(|_| Ok(Page::new(vec![1, 2], info(None, None))));
    let items: Vec<u32> = stream.try_collect().await.unwrap();
    assert_eq!(items, [1, 2]);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn without_total_pages_an_empty_page_ends_it() {
    let (stream, log) = stream_of(|n| {
        let items = if n < 3 { vec![n] } else { Vec::new() };
        Ok(Page::new(items, info(Some(n.into()), None)))
    });
    let items: Vec<u32> = stream.try_collect().await.unwrap();
    assert_eq!(items, [1, 2]);
    assert_eq!(*log.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test]
async fn an_error_is_yielded_once_and_ends_the_stream() {
    let (stream, log) = stream_of(|n| {
        if n == 2 {
            Err(crate::Error::invalid("page", "boom"))
        } else {
            Ok(Page::new(vec![n], info(Some(n.into()), Some(9))))
        }
    });
    let all: Vec<Result<u32>> = stream.collect().await;
    assert_eq!(all.len(), 2);
    assert_eq!(*all[0].as_ref().unwrap(), 1);
    assert!(all[1].is_err());
    assert_eq!(*log.lock().unwrap(), [1, 2]);
}

#[test]
fn next_page_reads_result_info() {
    assert_eq!(
        Page::new(vec![1], info(Some(1), Some(2))).next_page(),
        Some(2)
    );
    assert_eq!(Page::new(vec![1], info(Some(2), Some(2))).next_page(), None);
    assert_eq!(Page::new(vec![1], info(None, Some(2))).next_page(), None);
    assert_eq!(Page::new(vec![1], None).next_page(), None);
    assert_eq!(
        Page::<u32>::new(vec![], info(Some(1), Some(2))).next_page(),
        None
    );
}
