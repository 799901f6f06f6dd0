fn main(){println!("cli");}
