// Preloaded into a server under test (`node --import`): on SIGUSR2 it makes the process print the
// ways libraries do, so a test can check that each comes out as one JSON line.
process.on('SIGUSR2', () => {
  Promise.reject(new Error('an injected unhandled rejection'))
  console.warn('an injected warning\n  with a second line')
  console.log('an injected console.log', { nested: { value: 1 } })
  process.stdout.write('an injected raw write\nwith two lines\n')
  process.emitWarning('an injected process warning')
  setTimeout(() => console.error('injection done'), 50)
})
