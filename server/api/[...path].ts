// Unknown API paths answer JSON, not the app's HTML page.
export default defineEventHandler(() => {
  throw fail(404, 'not_found', 'There is no such API endpoint.')
})
