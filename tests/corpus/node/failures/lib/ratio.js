function ratio(a, b) {
  if (b === 0) throw new RangeError(`cannot divide ${a} by zero`);
  return a / b;
}
module.exports = { ratio };
