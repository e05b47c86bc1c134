//! Page-number pagination, shared by every list call that can span several pages.
//!
//! A list builder returns one [`Page`] when awaited, and a [`PageStream`] of items from
//! `into_stream()`. The stream asks for the next page only when the previous one has been
//! consumed, and it is defensive about servers that do not page the way they say they do.

use crate::error::Result;
use crate::models::ResultInfo;
use futures::stream::{BoxStream, Stream, StreamExt as _};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One page of a list response: the items and the server's paging facts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items on this page, in the server's order.
    pub items: Vec<T>,
    /// `result_info` of the response (page number, page count, totals), when sent.
    pub result_info: Option<ResultInfo>,
}

impl<T> Page<T> {
    pub(crate) fn new(items: Vec<T>, result_info: Option<ResultInfo>) -> Self {
        Page { items, result_info }
    }

    /// The number of the page after this one, when `result_info` says there is one.
    ///
    /// `None` when this page is empty, is the last one (`page >= total_pages`), or the
    /// response carried no page number.
    pub fn next_page(&self) -> Option<u32> {
        if self.items.is_empty() {
            return None;
        }
        let info = self.result_info.as_ref()?;
        let page = info.page?;
        if info.total_pages.is_some_and(|total| page >= total) {
            return None;
        }
        u32::try_from(page).ok()?.checked_add(1)
    }

    /// Items on all pages, when the server said.
    pub fn total_count(&self) -> Option<u64> {
        self.result_info.as_ref().and_then(|i| i.total_count)
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Page<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// The items of a paginated listing, fetched page by page as the stream is polled.
///
/// Nothing is requested until the stream is first polled. It ends after an empty page,
/// after the last page according to `result_info`, after a response without
/// `result_info`, and when the server answers with a page it already sent (the same page
/// number or the same items), which is what a server that ignores `page` does: such a
/// repeat is dropped, never yielded twice. A failed request is yielded as one `Err`,
/// and the stream ends there.
#[must_use = "streams do nothing unless polled"]
pub struct PageStream<T> {
    inner: BoxStream<'static, Result<T>>,
}

impl<T> Stream for PageStream<T> {
    type Item = Result<T>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl<T> fmt::Debug for PageStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageStream").finish_non_exhaustive()
    }
}

struct Cursor<T, F> {
    fetch: F,
    /// The page to ask for next; `None` once the listing is known to be over.
    next: Option<u32>,
    /// What the previous page looked like, to recognise a server repeating itself.
    last_number: Option<u64>,
    last_items: Vec<T>,
    ready: std::vec::IntoIter<T>,
}

/// Streams the items of pages `first`, `first + 1`, … as returned by `fetch(page)`.
pub(crate) fn paginate<T, F, Fut>(first: u32, fetch: F) -> PageStream<T>
where
    T: PartialEq + Clone + Send + 'static,
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send + 'static,
{
    let cursor = Cursor {
        fetch,
        next: Some(first),
        last_number: None,
        last_items: Vec::new(),
        ready: Vec::new().into_iter(),
    };
    let inner = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(item) = c.ready.next() {
                return Some((Ok(item), c));
            }
            let requested = c.next.take()?;
            let page = match (c.fetch)(requested).await {
                Ok(page) => page,
                // `next` is already cleared, so the stream ends after the error.
                Err(err) => return Some((Err(err), c)),
            };
            if page.items.is_empty() {
                return None;
            }
            let number = page.result_info.as_ref().and_then(|i| i.page);
            let number_went_back = matches!(
                (c.last_number, number),
                (Some(previous), Some(now)) if now <= previous
            );
            if number_went_back || page.items == c.last_items {
                return None;
            }
            c.next = page_after(requested, &page);
            c.last_number = number.or(c.last_number);
            c.last_items.clone_from(&page.items);
            c.ready = page.items.into_iter();
        }
    });
    PageStream {
        inner: inner.boxed(),
    }
}

/// The page to request after `requested`, or `None` when `page` was the last one.
fn page_after<T>(requested: u32, page: &Page<T>) -> Option<u32> {
    // Without paging facts there is no telling whether more exist; asking anyway could
    // loop forever on a server that does not page at all.
    let info = page.result_info.as_ref()?;
    let current = info.page.unwrap_or(u64::from(requested));
    if info.total_pages.is_some_and(|total| current >= total) {
        return None;
    }
    requested.checked_add(1)
}

#[cfg(test)]
#[path = "pagination_tests.rs"]
mod tests;
